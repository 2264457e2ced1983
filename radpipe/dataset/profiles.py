"""Which preprocessing profile a dataset's images (or volumes) were stored with: what a model must expect."""

from __future__ import annotations

import pyarrow.compute as pc

from radpipe.dataset.store import DatasetStore
from radpipe.errors import SourceError


def dataset_profile(store: DatasetStore, volumes: bool = False) -> str:
    """The images' profile; with `volumes`, the assembled volumes' profiles, comma-joined (as a 3D model's spec)."""
    if volumes:
        held = store.read_table("volumes", ["profile", "issues"])
        held = held.filter(pc.equal(pc.list_value_length(held["issues"]), 0))
        return ",".join(sorted(str(p) for p in pc.unique(held["profile"]).to_pylist()))
    profiles = pc.unique(store.read_table("images", ["profile"])["profile"]).to_pylist()
    if len(profiles) != 1:
        raise SourceError(f"images were ingested with several profiles ({', '.join(map(str, profiles))}); one expected")
    return str(profiles[0])
