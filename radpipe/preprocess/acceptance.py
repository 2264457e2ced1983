"""What a 2D profile is for: the images it accepts, and a named reason for any other (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from radpipe.dicom.codes import DEFINED_BODY_PARTS, DEFINED_MODALITIES, ViewPosition
from radpipe.dicom.header import InstanceHeader
from radpipe.errors import ConfigError

# How chest radiographs name their body part across vendors and languages ("TORAX": Spanish, Portuguese).
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "TORAX", "CHESTABDOMEN", "PORT CHEST", "CHEST_LAT"})
HUMAN_SPECIES = frozenset({"", "HOMO SAPIENS", "HUMAN", "L-85B00"})  # L-85B00: SNOMED RT code for Homo sapiens


@dataclass(frozen=True)
class Acceptance:
    """The images a 2D profile trains on; frozen, every field says why."""

    # Projection radiographs only: US, XA or a segmentation object windowed like a radiograph teach nothing true.
    modalities: frozenset[str] = frozenset({"CR", "DX"})
    # A chest profile: a hand or a QA pattern resized to 224 x 224 would poison the image-report pairs.
    body_parts: frozenset[str] = CHEST_BODY_PARTS
    # Many archives leave BodyPartExamined empty; accepting such images (and counting them) is the default.
    accept_unknown_body_part: bool = True
    # Views a chest report describes; an unknown view is accepted (often empty on portable studies).
    views: frozenset[str] = frozenset(v.value for v in ViewPosition)
    # Rows and columns at least this: a 2x2 QA exposure is not a radiograph.
    min_pixels: int = 128
    # Field of view at least this many mm each way where a pixel spacing is given (a neonatal chest is ~100 mm).
    min_extent_mm: float = 80.0

    def __post_init__(self) -> None:
        if self.min_pixels < 1 or self.min_extent_mm < 0:
            raise ConfigError("acceptance: min_pixels must be positive and min_extent_mm not negative")


def outside_profile(acceptance: Acceptance, header: InstanceHeader, species: str = "") -> str | None:
    """Why an image is outside what the profile accepts (the attribute named, never a free-text value), or None."""
    if header.modality not in acceptance.modalities:
        shown = header.modality if header.modality in DEFINED_MODALITIES else "(not a defined term)"
        return f"modality {shown}; the profile accepts {', '.join(sorted(acceptance.modalities))}"
    if species.strip().upper() not in HUMAN_SPECIES:
        return "patient species is not human"
    body_part = (header.body_part or "").strip().upper()
    if body_part and body_part not in acceptance.body_parts:
        shown = body_part if body_part in DEFINED_BODY_PARTS else "(not a defined term)"
        return f"body part {shown}; the profile accepts {', '.join(sorted(acceptance.body_parts))}"
    if not body_part and not acceptance.accept_unknown_body_part:
        return "body part not given; the profile requires one"
    view = (header.view_position or "").strip().upper()
    if view and view not in acceptance.views:
        return "view position not one the profile accepts"
    if min(header.rows, header.columns) < acceptance.min_pixels:
        return f"{header.rows} x {header.columns} pixels; the profile needs {acceptance.min_pixels} each way"
    if header.pixel_spacing and len(header.pixel_spacing) == 2:
        extent = min(header.rows * header.pixel_spacing[0], header.columns * header.pixel_spacing[1])
        if 0 < extent < acceptance.min_extent_mm:
            return f"field of view {extent:.0f} mm; the profile needs {acceptance.min_extent_mm:.0f} mm each way"
    return None
