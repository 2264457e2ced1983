"""One DICOM file in, one instances/ + images/ row pair or one quarantine record out (pure)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydicom.errors import InvalidDicomError

from radpipe.dataset.pixels import encode_pixels
from radpipe.deid import Deidentifier
from radpipe.deid.burned_in import burned_in_reason
from radpipe.deid.identifiers import PhiKind, header_forms
from radpipe.dicom.codes import Modality
from radpipe.dicom.geometry import GeometryError, SliceGeometry, read_geometries
from radpipe.dicom.header import HeaderError, InstanceHeader, read_header
from radpipe.dicom.mosaic import is_mosaic, mosaic_geometries, unpack_tiles
from radpipe.dicom.pixels import (
    COLOUR_SPACES,
    MissingPaletteError,
    TruncatedPixelsError,
    UndecodableError,
    decode_frames,
    grey_pixels,
)
from radpipe.ingest.quarantine import Quarantined, Reason, Stage, safe_detail
from radpipe.preprocess import Profile
from radpipe.preprocess.acceptance import outside_profile
from radpipe.preprocess.dicom_image import parse_dicom, profiled_pixels
from radpipe.preprocess.volume import to_hu

# 100 megapixels: far above any radiograph (a 43 x 43 cm detector at 0.1 mm is 18.5 MP).
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class IngestedInstance:
    """The rows one good file contributes: a radiograph's image, or a CT/MR instance's slices (frames)."""

    instance: dict[str, Any]
    image: dict[str, Any] | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)
    stand_in_patient: bool = False  # the source named no patient: the study stands in (Pseudonymizer)


def process_dicom(
    raw: bytes,
    source_key: str,
    path_for_redaction: str,
    deid: Deidentifier,
    profile: Profile,
    collect: Callable[[dict[str, PhiKind]], None] | None = None,
) -> IngestedInstance | Quarantined:
    """Parse, check, de-identify, decode and preprocess one file.

    `collect` receives the source header's identifier forms before de-identification (for the PHI gate).
    """

    def reject(stage: Stage, reason: Reason, detail: str) -> Quarantined:
        return Quarantined(source_key, stage, reason, safe_detail(detail, path_for_redaction))

    if not raw:
        return reject(Stage.READ, Reason.EMPTY_FILE, "file is empty")
    try:
        ds = parse_dicom(raw)
    except InvalidDicomError:
        return reject(Stage.READ, Reason.NOT_DICOM, "no DICOM preamble or header")
    except (EOFError, struct.error, OverflowError) as exc:
        return reject(Stage.READ, Reason.TRUNCATED, f"file ends inside the header ({type(exc).__name__})")
    except Exception as exc:  # pydicom raises many types for malformed files
        return reject(Stage.READ, Reason.NOT_DICOM, f"unparseable DICOM ({type(exc).__name__})")
    if collect is not None:  # every parsed file: radpipe/ingest/identifier_repair.py rebuilds the same way
        collect(header_forms(ds))
    no_patient = not str(ds.get("PatientID", "") or "").strip()  # before de-identification fills one in
    mosaic: list[SliceGeometry] | None = None
    if is_mosaic(ds):  # its tiles are placed by a private header the seam removes: read it first
        try:
            mosaic = mosaic_geometries(ds)
        except GeometryError as exc:
            return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, str(exc))
    outcome = _process_parsed(ds, source_key, deid, profile, reject, mosaic)
    if isinstance(outcome, IngestedInstance) and no_patient:
        outcome = replace(outcome, stand_in_patient=True)
    return outcome


def _process_parsed(
    ds: Any,
    source_key: str,
    deid: Deidentifier,
    profile: Profile,
    reject: Callable[[Stage, Reason, str], Quarantined],
    mosaic: list[SliceGeometry] | None = None,
) -> IngestedInstance | Quarantined:
    if "PixelData" not in ds:
        return reject(Stage.HEADER, Reason.NO_PIXELS, "instance carries no pixel data")
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, "no transfer syntax in the file meta")
    privacy = burned_in_reason(ds, deid.burned_in_allowed)
    if privacy is not None:
        return reject(Stage.PRIVACY, privacy, "burned-in text possible; allow the modality to ingest it")
    try:
        ds = deid.dataset(ds)  # the de-identification seam: nothing below sees a source identifier
        header = read_header(ds)
    except HeaderError as exc:
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, str(exc))
    except Exception as exc:
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, f"malformed header ({type(exc).__name__})")
    if header.rows * header.columns * header.number_of_frames > MAX_PIXELS:
        # Decoding a declared 65535 x 65535 image would take the worker (and its whole batch) down.
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, f"declared size above {MAX_PIXELS:,} pixels")
    if header.modality in Modality.cross_sectional():
        return _cross_sectional(ds, header, source_key, reject, mosaic)
    return _projection(ds, header, source_key, profile, reject)


def _projection(
    ds: Any,
    header: InstanceHeader,
    source_key: str,
    profile: Profile,
    reject: Callable[[Stage, Reason, str], Quarantined],
) -> IngestedInstance | Quarantined:
    """A de-identified radiograph (or another 2D image): checked against the profile, decoded, profiled."""
    colour = header.samples_per_pixel == 3 and header.photometric_interpretation.upper() in COLOUR_SPACES
    grey = header.samples_per_pixel == 1 or colour  # colour becomes luminance (grey_pixels)
    if header.modality in Modality.projection() and (not grey or header.number_of_frames != 1):
        return reject(
            Stage.HEADER,
            Reason.UNSUPPORTED_IMAGE,
            f"{header.samples_per_pixel} samples, {header.number_of_frames} frames; one grey frame expected",
        )
    outside = outside_profile(profile.accepts, header, str(ds.get("PatientSpeciesDescription", "") or ""))
    if outside is not None:
        return reject(Stage.HEADER, Reason.OUTSIDE_PROFILE, f"{outside} (profile {profile.name})")
    decoded = _decode(grey_pixels, ds, reject)
    if isinstance(decoded, Quarantined):
        return decoded
    stored, decoder = decoded
    if "+luminance(" in decoder:  # windowed and inverted as the grey image it now is
        ds.PhotometricInterpretation = "MONOCHROME2"
    if stored.shape != (header.rows, header.columns):
        return reject(
            Stage.PIXELS,
            Reason.INCONSISTENT_HEADER,
            f"decoded shape {stored.shape} differs from Rows x Columns",
        )
    try:
        pixels = profiled_pixels(ds, stored, profile)
    except Exception as exc:  # a malformed modality LUT is bad data, not a crash
        return reject(Stage.PIXELS, Reason.INCONSISTENT_HEADER, f"modality LUT unusable ({type(exc).__name__})")
    if int(pixels.max()) == int(pixels.min()):
        return reject(Stage.PIXELS, Reason.BLANK_IMAGE, "the image is one constant value after windowing")
    return IngestedInstance(
        instance=_instance_row(header, stored, decoder, source_key), image=_image_row(header, pixels, profile)
    )


def _decode(
    decoder: Callable[[Any], tuple[np.ndarray, str]], ds: Any, reject: Callable[[Stage, Reason, str], Quarantined]
) -> tuple[np.ndarray, str] | Quarantined:
    """Decoded pixels, or the quarantine record saying why not (codecs raise many types)."""
    try:
        return decoder(ds)
    except TruncatedPixelsError as exc:
        return reject(Stage.PIXELS, Reason.TRUNCATED, str(exc))
    except MissingPaletteError as exc:
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, str(exc))
    except UndecodableError as exc:
        return reject(Stage.PIXELS, Reason.UNDECODABLE, str(exc))
    except Exception as exc:
        return reject(Stage.PIXELS, Reason.UNDECODABLE, f"pixel data could not be decoded ({type(exc).__name__})")


def _cross_sectional(
    ds: Any,
    header: InstanceHeader,
    source_key: str,
    reject: Callable[[Stage, Reason, str], Quarantined],
    mosaic: list[SliceGeometry] | None = None,
) -> IngestedInstance | Quarantined:
    """A CT/MR instance: every frame (or mosaic tile) as a slice in modality values, placed by its geometry."""
    if header.samples_per_pixel != 1:
        return reject(Stage.HEADER, Reason.UNSUPPORTED_IMAGE, f"{header.samples_per_pixel} samples; grey expected")
    try:
        geometries = mosaic or read_geometries(ds)
    except GeometryError as exc:
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, str(exc))
    except Exception as exc:
        return reject(Stage.HEADER, Reason.INCONSISTENT_HEADER, f"malformed geometry ({type(exc).__name__})")
    decoded = _decode(decode_frames, ds, reject)
    if isinstance(decoded, Quarantined):
        return decoded
    frames, decoder = decoded
    rows, columns = geometries[0].rows, geometries[0].columns
    if mosaic is not None and frames.shape == (1, header.rows, header.columns):
        frames = unpack_tiles(frames[0], len(mosaic), rows, columns)
        decoder += "+mosaic"
    if frames.shape != (len(geometries), rows, columns):
        return reject(Stage.PIXELS, Reason.INCONSISTENT_HEADER, f"decoded {frames.shape} differs from the header")
    # CT in HU fits int16 exactly; MR has no fixed scale, so its values are kept as float32.
    dtype = np.dtype("<i2") if header.modality == Modality.CT.value else np.dtype("<f4")
    slices = []
    for index, (frame, geometry) in enumerate(zip(frames, geometries, strict=True)):
        values = to_hu(frame, geometry.rescale_slope, geometry.rescale_intercept)
        if dtype.kind == "i":
            values = np.clip(np.rint(values), -32768, 32767)
        slices.append(
            {
                "sop_instance_uid": header.sop_instance_uid,
                "frame": index,
                "series_instance_uid": header.series_instance_uid,
                "study_instance_uid": header.study_instance_uid,
                "modality": header.modality,
                "position": list(geometry.position),
                "orientation": list(geometry.orientation),
                "pixel_spacing": list(geometry.pixel_spacing),
                "temporal_position": geometry.temporal_position,
                "stack": geometry.stack,
                "pixels": values.astype(dtype).tobytes(),
                "shape": [rows, columns],
                "dtype": dtype.str,
            }
        )
    return IngestedInstance(instance=_instance_row(header, frames, decoder, source_key), slices=slices)


def _instance_row(header: InstanceHeader, stored: np.ndarray, decoder: str, source_key: str) -> dict[str, Any]:
    row = header.row()
    # Exact-duplicate detection hashes decoded pixels, so a re-encoded copy still matches.
    row["content_hash"] = pixel_hash(stored)
    row["decoder"] = decoder
    row["source_key"] = source_key
    return row


def pixel_hash(stored: np.ndarray) -> str:
    """Hash of decoded pixel values, independent of transfer syntax and byte order."""
    little = np.ascontiguousarray(stored, dtype=stored.dtype.newbyteorder("<"))
    # SHA-256 runs in hardware (SHA-NI) on current CPUs: twice as fast as BLAKE2b here (make bench).
    digest = hashlib.sha256(f"{little.shape}{little.dtype.str}".encode())
    digest.update(little.data)
    return digest.hexdigest()[:32]


def _image_row(header: InstanceHeader, pixels: np.ndarray, profile: Profile) -> dict[str, Any]:
    return {
        "sop_instance_uid": header.sop_instance_uid,
        "study_instance_uid": header.study_instance_uid,
        **encode_pixels(pixels),
        "profile": profile.name,
    }
