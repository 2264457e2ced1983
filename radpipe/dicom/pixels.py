"""Decode pixel data with the best available open codec and apply the modality LUT."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder

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


# Colour images a grey profile can take: converted to luminance (ITU-R BT.601), the conversion recorded.
COLOUR_SPACES = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})
PALETTE = "PALETTE COLOR"
_LUMA = np.array([0.299, 0.587, 0.114])


class MissingPaletteError(ValueError):
    """PALETTE COLOR pixel data without the lookup tables that give its colours."""


def grey_pixels(ds: Dataset) -> tuple[np.ndarray, str]:
    """The first frame as one grey channel: colour and palette images become luminance (named in the decoder).

    Raises MissingPaletteError for PALETTE COLOR without its tables (the indices alone are not an image).
    """
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == PALETTE and not _has_palette(ds):
        raise MissingPaletteError("PALETTE COLOR without its lookup tables")
    stored, decoder = decode_pixels(ds)
    if photometric == PALETTE:
        rgb = apply_color_lut(stored, ds)
    elif stored.ndim == 3 and stored.shape[-1] == 3:  # decoders hand YBR back as RGB (as_rgb)
        rgb = stored
    else:
        return stored, decoder
    luminance = np.rint(rgb.astype(np.float64) @ _LUMA).astype(rgb.dtype)
    return luminance, f"{decoder}+luminance({photometric})"


def _has_palette(ds: Dataset) -> bool:
    colours = ("Red", "Green", "Blue")
    plain = all(f"{c}PaletteColorLookupTableData" in ds for c in colours)
    segmented = all(f"Segmented{c}PaletteColorLookupTableData" in ds for c in colours)
    described = all(f"{c}PaletteColorLookupTableDescriptor" in ds for c in colours)
    return described and (plain or segmented)
