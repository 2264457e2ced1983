"""Decode pixel data with the best available open codec and apply the modality LUT."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, get_decoder

# Preferred plugins per codec, fastest first; whichever is installed and first in this list decodes.
# pyjpegls (CharLS) decodes JPEG-LS ~3x faster than libjpeg; it serves no other syntax, so it can lead.
PLUGIN_PREFERENCE: tuple[str, ...] = ("pyjpegls", "pylibjpeg", "gdcm", "pydicom", "pillow")
NATIVE = "pydicom-native"


class TruncatedPixelsError(ValueError):
    """Pixel data is shorter than Rows x Columns x frames x samples needs."""


class UndecodableError(ValueError):
    """No available codec could decode the pixel data."""


def choose_plugin(transfer_syntax: str) -> str:
    """The plugin radpipe decodes this transfer syntax with ("" for uncompressed)."""
    decoder = get_decoder(transfer_syntax)  # raises NotImplementedError for unknown syntaxes
    available = set(decoder.available_plugins)
    if not available:
        if not decoder.is_available:
            raise UndecodableError(f"no installed codec decodes transfer syntax {transfer_syntax}")
        return ""
    for plugin in PLUGIN_PREFERENCE:
        if plugin in available:
            return plugin
    return sorted(available)[0]


def expected_native_bytes(ds: Dataset) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    pixels = int(ds.Rows) * int(ds.Columns) * frames * samples
    return (pixels * bits + 7) // 8


def decode_pixels(ds: Dataset) -> tuple[np.ndarray, str]:
    """Return (stored pixel values, decoder name) of the first frame; raise on truncation or failure."""
    return _decode(ds, 0)


def decode_frames(ds: Dataset) -> tuple[np.ndarray, str]:
    """Return (stored values of every frame [frames, rows, columns], decoder name); raise like decode_pixels."""
    array, decoder = _decode(ds, None)
    return (array[None] if array.ndim == 2 else array), decoder


def _decode(ds: Dataset, index: int | None) -> tuple[np.ndarray, str]:
    transfer_syntax = str(ds.file_meta.TransferSyntaxUID)
    try:
        plugin = choose_plugin(transfer_syntax)
    except NotImplementedError as exc:
        raise UndecodableError(f"unsupported transfer syntax {transfer_syntax}") from exc
    if not plugin and len(ds.PixelData) < expected_native_bytes(ds):
        raise TruncatedPixelsError(f"pixel data holds {len(ds.PixelData)} bytes, {expected_native_bytes(ds)} expected")
    try:
        array, _ = get_decoder(transfer_syntax).as_array(ds, index=index, decoding_plugin=plugin)
    except Exception as exc:  # codecs raise many types; all mean the same thing to us
        raise UndecodableError(f"{plugin or 'native'} decoder failed: {type(exc).__name__}") from exc
    return array, plugin or NATIVE


def modality_values(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    """Stored values through the modality LUT (rescale slope/intercept or LUT), as float32."""
    values = apply_modality_lut(stored, ds)
    return np.asarray(values, dtype=np.float32)
