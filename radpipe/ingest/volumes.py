"""Assemble CT/MR slices into volumes/: per series, order and check the geometry, resample to the profile.

Runs after the slices of an ingest run are committed. A series is (re)assembled when its slice count differs
from the count its volume was built from, so a series whose files arrive over several runs ends up whole.
A series whose geometry is not sound (a missing slice, two slices at one position, a tilt, mixed sizes) is
never silently assembled: its volumes/ row keeps the issues and no pixels, and training skips it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as pads

from radpipe.dataset.commit import Move, commit_moves
from radpipe.dataset.pixels import decode_row, encode_pixels
from radpipe.dataset.schema import SLICES
from radpipe.dataset.store import STAGING, THREADS, DatasetStore, StagedTableWriter, filter_file
from radpipe.dicom.codes import Modality
from radpipe.dicom.geometry import GeometryError, SliceGeometry, assemble
from radpipe.preprocess.volume import VolumeProfile, get_volume_profile, output_affine, volume_from_slices

# The volume profile each modality is resampled with unless the caller says otherwise.
DEFAULT_VOLUME_PROFILES = {Modality.CT.value: "ct-small", Modality.MR.value: "mr-small"}


@dataclass
class VolumeStats:
    assembled: int = 0
    with_issues: int = 0
    issues: Counter[str] = field(default_factory=Counter)  # issue kind -> series


def stale_series(store: DatasetStore) -> list[str]:
    """Series whose slice count differs from what their volume was assembled from (or have no volume yet)."""
    if not store.table_files("slices"):
        return []
    counts = pc.value_counts(store.read_table("slices", ["series_instance_uid"])["series_instance_uid"])
    have = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
    built = store.read_table("volumes", ["series_instance_uid", "n_slices"]).to_pylist()
    done = {row["series_instance_uid"]: row["n_slices"] for row in built}
    return sorted(uid for uid, n in have.items() if done.get(uid) != n)


def _stack_order(key: str | None) -> tuple[int, ...]:
    """Order sub-volume keys ("2", "1/DiffusionBValue=3") by their numbers, so stack 1 and index 1 come first."""
    if key is None:
        return ()
    return tuple(int(part.rsplit("=", 1)[-1]) for part in key.split("/"))


def assemble_series(rows: list[dict[str, Any]], profile: VolumeProfile) -> dict[str, Any]:
    """One series' slice rows (any order) to its volumes/ row (pure).

    An enhanced object with several sub-volumes (stacks, diffusion b-values, echoes) is assembled from its
    largest one (ties: the first), and a 4D series (several temporal positions) from its first time point;
    both counts are recorded.
    """
    count = len(rows)
    stacks = Counter(r.get("stack") for r in rows)
    if len(stacks) > 1:
        chosen = min(stacks, key=lambda key: (-stacks[key], _stack_order(key)))
        rows = [r for r in rows if r.get("stack") == chosen]
    times = sorted({int(r["temporal_position"]) for r in rows if r.get("temporal_position") is not None})
    if len(times) > 1:
        rows = [r for r in rows if r.get("temporal_position") == times[0]]
    first = rows[0]
    geometries = [
        SliceGeometry(
            position=tuple(r["position"]),
            orientation=tuple(r["orientation"]),
            pixel_spacing=tuple(r["pixel_spacing"]),
            rows=int(r["shape"][0]),
            columns=int(r["shape"][1]),
            slice_thickness=None,
            instance_number=None,
        )
        for r in rows
    ]
    row: dict[str, Any] = {
        "series_instance_uid": first["series_instance_uid"],
        "study_instance_uid": first["study_instance_uid"],
        "modality": first["modality"],
        "pixels": None,
        "shape": None,
        "dtype": None,
        "spacing": list(profile.spacing),
        "source_spacing": None,
        "affine": None,
        "n_slices": count,  # every slice of the series: a later run re-assembles when this changes
        "time_points": max(1, len(times)),
        "stacks": len(stacks),
        "issues": [],
        "profile": profile.name,
        "assembled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        geometry = assemble(geometries)
    except GeometryError as exc:
        row["issues"] = [f"geometry: {exc}"]
        return row
    row["source_spacing"] = list(geometry.spacing)
    if not geometry.ok:
        row["issues"] = [str(finding) for finding in geometry.issues]
        return row
    arrays = [decode_row(rows[i]) for i in geometry.order]
    volume = volume_from_slices(arrays, geometry, profile)
    row |= encode_pixels(volume)
    row["affine"] = output_affine(geometry, profile)  # where the volume sits in patient space, oblique or not
    return row


def assemble_volumes(
    store: DatasetStore,
    profiles: dict[str, str] | None = None,
    on_series: Callable[[int, int], None] | None = None,
) -> VolumeStats:
    """(Re)assemble every stale series and publish the rows atomically; call under the dataset lock."""
    names = {**DEFAULT_VOLUME_PROFILES, **(profiles or {})}
    chosen = {modality: get_volume_profile(name) for modality, name in names.items()}
    stats = VolumeStats()
    stale = stale_series(store)
    if not stale:
        return stats
    batch_id = "volumes-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    writer = StagedTableWriter(store, batch_id, "volumes")
    slices = pads.dataset(store.table_files("slices"), schema=SLICES, filesystem=store.fs, format="parquet")
    for done, series in enumerate(stale, start=1):
        # One series in memory at a time; row-group statistics let the scan skip other series' groups.
        rows = slices.to_table(filter=pc.field("series_instance_uid") == series, use_threads=THREADS).to_pylist()
        volume = assemble_series(rows, chosen[rows[0]["modality"]])
        writer.add(volume, batch_id)
        if volume["issues"]:
            stats.with_issues += 1
            stats.issues.update(issue.split(":", 1)[0] for issue in volume["issues"])
        else:
            stats.assembled += 1
        if on_series is not None:
            on_series(done, len(stale))
    moves: list[Move] = []
    replaced = set(stale)
    held: dict[str, set[str]] = {}
    for group in store.iter_row_groups("volumes", ["series_instance_uid"]):
        held.setdefault(group.file, set()).update(group.rows["series_instance_uid"].to_pylist())
    for file in store.table_files("volumes"):  # earlier volumes of re-assembled series go
        if not held.get(file, set()) & replaced:
            continue  # only files holding a replaced series are rewritten
        store.fs.makedirs(store.path(STAGING, batch_id), exist_ok=True)
        staged = store.path(STAGING, batch_id, f"volumes-{len(moves)}.parquet")
        filter_file(store, file, staged, "volumes", "series_instance_uid", replaced)
        moves.append((staged, store.relative(file)))
    staged_new = writer.close()
    if staged_new is not None:
        moves.append((staged_new, f"volumes/part-{batch_id}.parquet"))
    commit_moves(store, batch_id, moves)
    return stats
