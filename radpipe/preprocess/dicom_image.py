"""DICOM bytes to a profile image: the one path shared by ingest and the served model's `predict`."""

from __future__ import annotations

import io
import math

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from radpipe.dicom.codes import Photometric
from radpipe.dicom.pixels import grey_pixels, modality_values
from radpipe.preprocess.profile import Profile, apply_profile_stored


def parse_dicom(raw: bytes) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(raw))
    except InvalidDicomError:
        # Files written without the 128-byte preamble still start with a group 0002 or 0008 tag.
        if raw[:2] in (b"\x02\x00", b"\x08\x00"):
            return pydicom.dcmread(io.BytesIO(raw), force=True)
        raise


def voi_window(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """The first VOI window (center, width), or None when absent or unusable."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    first = lambda v: float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v)  # noqa: E731
    try:
        window = first(center), first(width)
    except (TypeError, ValueError, IndexError):
        return None
    # A NaN or infinite window would blank the image: fall back to percentiles instead.
    return window if all(math.isfinite(v) for v in window) and window[1] > 0 else None


def profiled_pixels(ds: pydicom.Dataset, stored: np.ndarray, profile: Profile) -> np.ndarray:
    """Modality LUT, window, MONOCHROME1 inversion and resize of decoded stored values."""
    return apply_profile_stored(
        stored,
        lambda values: modality_values(ds, values),
        profile,
        invert=str(ds.get("PhotometricInterpretation", "")) == Photometric.MONOCHROME1.value,
        voi=voi_window(ds),
    )


def image_from_dicom(raw: bytes, profile: Profile) -> np.ndarray:
    """A whole DICOM file's bytes to the profile image the model was trained on."""
    ds = parse_dicom(raw)
    stored, decoder = grey_pixels(ds)  # colour as luminance, the way ingest made the training images
    if "+luminance(" in decoder:
        ds.PhotometricInterpretation = "MONOCHROME2"
    if stored.ndim != 2:
        raise ValueError(f"expected one grey 2D frame, decoded shape {stored.shape}")
    return profiled_pixels(ds, stored, profile)
