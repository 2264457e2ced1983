"""Read the header fields radpipe keeps, from an already de-identified Dataset."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


class HeaderError(ValueError):
    """The header is missing or contradicts what a usable image needs."""


@dataclass(frozen=True)
class InstanceHeader:
    """The instances/ row of one DICOM instance (identifiers already pseudonymised)."""

    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str
    patient_id: str
    accession_number: str | None
    modality: str
    body_part: str | None
    view_position: str | None
    rows: int
    columns: int
    number_of_frames: int
    samples_per_pixel: int
    pixel_spacing: list[float] | None
    photometric_interpretation: str
    bits_allocated: int
    bits_stored: int
    transfer_syntax_uid: str
    manufacturer: str | None
    study_date: str | None
    is_synthetic: bool

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        raise HeaderError(f"{keyword} is missing")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"{keyword} is not an integer") from exc


def _spacing(ds: Dataset) -> list[float] | None:
    """Row and column spacing in mm; a single value means square pixels; nonsense means unknown."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            value = ds.get(keyword)
            if value is None or value == "":
                continue
            numbers = [float(v) for v in (value if isinstance(value, MultiValue | list) else [value])][:2]
        except (TypeError, ValueError):
            return None
        if len(numbers) == 1:
            numbers *= 2
        if len(numbers) == 2 and all(math.isfinite(n) and n > 0 for n in numbers):
            return numbers
        return None
    return None


def read_header(ds: Dataset) -> InstanceHeader:
    """Extract and check the kept header fields; raise HeaderError when the instance is unusable."""
    uids = {}
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        value = _text(ds, keyword)
        if value is None:
            raise HeaderError(f"{keyword} is missing")
        uids[keyword] = value
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise HeaderError("no pixel data")
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    bits_allocated, bits_stored = _int(ds, "BitsAllocated"), _int(ds, "BitsStored", _int(ds, "BitsAllocated"))
    if rows <= 0 or columns <= 0:
        raise HeaderError(f"image size {rows}x{columns} is not positive")
    if not 1 <= bits_stored <= bits_allocated:
        raise HeaderError(f"BitsStored {bits_stored} outside 1..BitsAllocated ({bits_allocated})")
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    return InstanceHeader(
        sop_instance_uid=uids["SOPInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        study_instance_uid=uids["StudyInstanceUID"],
        sop_class_uid=_text(ds, "SOPClassUID") or "",
        patient_id=_text(ds, "PatientID") or "",
        accession_number=_text(ds, "AccessionNumber"),
        modality=(_text(ds, "Modality") or "OT").upper(),
        body_part=_text(ds, "BodyPartExamined"),
        view_position=_text(ds, "ViewPosition"),
        rows=rows,
        columns=columns,
        number_of_frames=_int(ds, "NumberOfFrames", 1) if ds.get("NumberOfFrames") not in (None, "") else 1,
        samples_per_pixel=_int(ds, "SamplesPerPixel", 1),
        pixel_spacing=_spacing(ds),
        photometric_interpretation=_text(ds, "PhotometricInterpretation") or "",
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        transfer_syntax_uid=transfer_syntax,
        manufacturer=_text(ds, "Manufacturer"),
        study_date=_text(ds, "StudyDate"),
        is_synthetic=_text(ds, "SyntheticData") == "YES",
    )
