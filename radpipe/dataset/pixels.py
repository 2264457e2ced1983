"""The pixel contract of images/ and volumes/: little-endian bytes, a shape and a NumPy dtype string."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def encode_pixels(array: np.ndarray) -> dict[str, Any]:
    """The stored columns of an image or volume; `decode_pixels` restores it exactly."""
    little = array.dtype.newbyteorder("<")  # "|u1" stays "|u1"; a big-endian source becomes "<u2"
    return {"pixels": array.astype(little, copy=False).tobytes(), "shape": list(array.shape), "dtype": little.str}


def decode_pixels(pixels: bytes, shape: Sequence[int], dtype: str) -> np.ndarray:
    """A stored image or volume as a read-only array (no copy)."""
    return np.frombuffer(pixels, dtype=np.dtype(dtype)).reshape(tuple(int(n) for n in shape))


def decode_row(row: dict[str, Any]) -> np.ndarray:
    """The array of a row read from images/ or volumes/ (`pixels`, `shape`, `dtype`)."""
    return decode_pixels(row["pixels"], row["shape"], row["dtype"])
