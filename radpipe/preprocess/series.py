"""A CT/MR series given as DICOM files (any order) to its stored volume: what the served model does with a
`series` input, the same steps ingest takes (geometry, modality LUT, resampling), minus de-identification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from radpipe.dicom.geometry import SliceGeometry, assemble, read_geometries
from radpipe.dicom.pixels import decode_frames
from radpipe.preprocess.dicom_image import parse_dicom
from radpipe.preprocess.volume import VolumeProfile, volume_from_slices


class SeriesError(ValueError):
    """The files do not make one sound series (the message names the problem, never a value)."""


def volume_from_files(raws: Sequence[bytes], profiles: Mapping[str, VolumeProfile]) -> tuple[np.ndarray, VolumeProfile]:
    """Files of one series -> (volume at the modality's profile, that profile); SeriesError if unsound."""
    if not raws:
        raise SeriesError("the series holds no file")
    geometries: list[SliceGeometry] = []
    frames: list[np.ndarray] = []
    modalities: set[str] = set()
    series: set[str] = set()
    for raw in raws:
        ds = parse_dicom(bytes(raw))
        modalities.add(str(ds.get("Modality", "")).upper())
        series.add(str(ds.get("SeriesInstanceUID", "")))
        found = read_geometries(ds)
        stored, _ = decode_frames(ds)
        if len(stored) != len(found):
            raise SeriesError(f"{len(stored)} frames decoded against {len(found)} positions")
        geometries.extend(found)
        frames.extend(stored)
    if len(series) != 1 or len(modalities) != 1:
        raise SeriesError(f"files from {len(series)} series and {len(modalities)} modalities; one series expected")
    modality = modalities.pop()
    if modality not in profiles:
        raise SeriesError(f"modality {modality if modality in ('CT', 'MR') else 'other'} is not one this model embeds")
    geometry = assemble(geometries)
    if not geometry.ok:
        raise SeriesError("geometry: " + "; ".join(str(finding) for finding in geometry.issues))
    profile = profiles[modality]
    volume = volume_from_slices([frames[i] for i in geometry.order], geometry, profile)
    return volume, profile
