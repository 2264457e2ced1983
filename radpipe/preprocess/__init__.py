"""Preprocessing profiles: windowing, normalisation and resizing, recorded by name with every image."""

from radpipe.preprocess.profile import PROFILES, Profile, apply_profile, apply_profile_stored, get_profile

__all__ = ["PROFILES", "Profile", "apply_profile", "apply_profile_stored", "get_profile"]
