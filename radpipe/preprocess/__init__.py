"""Preprocessing profiles: windowing, normalisation and resizing, recorded by name with every image."""

from radpipe.preprocess.profile import PROFILES, Profile, apply_profile, get_profile

__all__ = ["PROFILES", "Profile", "apply_profile", "get_profile"]
