"""A 2D profile says what it accepts; anything else is outside_profile with the rule named, never a free value."""

from __future__ import annotations

from dataclasses import replace

import pytest

from radpipe.dicom.header import InstanceHeader
from radpipe.preprocess.acceptance import Acceptance, outside_profile

CHEST_PA = InstanceHeader(
    sop_instance_uid="2.25.1",
    series_instance_uid="2.25.2",
    study_instance_uid="2.25.3",
    sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
    patient_id="p",
    accession_number=None,
    modality="DX",
    body_part="CHEST",
    view_position="PA",
    rows=2500,
    columns=2000,
    number_of_frames=1,
    samples_per_pixel=1,
    pixel_spacing=[0.15, 0.15],
    photometric_interpretation="MONOCHROME2",
    bits_allocated=16,
    bits_stored=12,
    transfer_syntax_uid="1.2.840.10008.1.2.1",
    manufacturer=None,
    study_date=None,
    is_synthetic=False,
)


def test_a_chest_radiograph_is_accepted_also_without_body_part_or_view() -> None:
    assert outside_profile(Acceptance(), CHEST_PA) is None
    assert outside_profile(Acceptance(), replace(CHEST_PA, body_part=None, view_position=None)) is None
    assert outside_profile(Acceptance(), replace(CHEST_PA, body_part="Thorax")) is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"modality": "US"}, "modality US"),
        ({"modality": "XA"}, "modality XA"),
        ({"modality": "SMITH JOHN"}, "modality (not a defined term)"),  # free text is never echoed
        ({"body_part": "PATTERN", "rows": 2, "columns": 2}, "body part PATTERN"),  # a QA exposure
        ({"body_part": "HAND"}, "body part HAND"),
        ({"body_part": "JOHNS KNEE"}, "body part (not a defined term)"),
        ({"view_position": "OBLIQUE"}, "view position"),
        ({"rows": 2, "columns": 2, "pixel_spacing": None}, "2 x 2 pixels"),
        ({"pixel_spacing": [0.01, 0.01]}, "field of view 20 mm"),  # 2000 px at 0.01 mm: a specimen, not a chest
    ],
)
def test_anything_else_is_outside_with_the_rule_named(change: dict, named: str) -> None:
    reason = outside_profile(Acceptance(), replace(CHEST_PA, **change))
    assert reason is not None and reason.startswith(named)
    assert "SMITH" not in reason and "JOHNS" not in reason


def test_a_non_human_patient_and_a_required_body_part() -> None:
    assert outside_profile(Acceptance(), CHEST_PA, species="Canis lupus familiaris") == "patient species is not human"
    assert outside_profile(Acceptance(), CHEST_PA, species="Homo sapiens") is None
    strict = Acceptance(accept_unknown_body_part=False)
    assert (
        outside_profile(strict, replace(CHEST_PA, body_part=""), "") == "body part not given; the profile requires one"
    )
