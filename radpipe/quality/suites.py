"""Expectation suites as plain data: one per table, plus one over dataset-wide metrics.

Each check names a Great Expectations expectation class and its arguments; only radpipe/quality/gx.py
turns them into GX objects. Derived columns (shape_h, spacing_row, ...) are added per batch by
radpipe/quality/batches.py, so every check is a plain column check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from radpipe.dicom.codes import Modality


@dataclass(frozen=True)
class Check:
    expectation: str  # a GX 1.x expectation class name, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: dict[str, Any] = field(default_factory=dict)
    why: str = ""


def _not_null(*columns: str) -> list[Check]:
    return [Check("ExpectColumnValuesToNotBeNull", {"column": c}, "required") for c in columns]


# Dates after shifting still fall in a plausible range (shifts are at most ten years back).
EARLIEST_DATE, LATEST_DATE = 19000101, 21001231
# The share of reports allowed without FINDINGS or IMPRESSION (some reports are just a line).
REPORT_SECTIONS_MOSTLY = 0.8


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds a dataset must meet; defaults suit a curated research archive."""

    # Ceiling on quarantined / (ingested + quarantined) files: above it, the source itself is suspect.
    max_quarantine_rate: float = 0.2
    # Fraction of reports that must have FINDINGS or IMPRESSION.
    report_sections_mostly: float = REPORT_SECTIONS_MOSTLY
    # Fraction of reports in a language the labeller has rules for: the rest have null labels, which a
    # few short lines may; most of a dataset may not (train on it and the labels say nothing).
    labelled_language_mostly: float = 0.8
    # The profile's image shape (images/ must all have it).
    image_shape: tuple[int, int] = (224, 224)
    allowed_modalities: tuple[str, ...] = tuple(sorted(Modality.projection() | Modality.cross_sectional()))


def table_suites(config: QualityConfig) -> dict[str, list[Check]]:
    height, width = config.image_shape
    return {
        "instances": [
            *_not_null("sop_instance_uid", "series_instance_uid", "study_instance_uid", "patient_id", "modality"),
            Check("ExpectColumnValuesToBeBetween", {"column": "rows", "min_value": 1}, "sizes are positive"),
            Check("ExpectColumnValuesToBeBetween", {"column": "columns", "min_value": 1}, "sizes are positive"),
            Check("ExpectColumnValuesToBeBetween", {"column": "bits_stored", "min_value": 1, "max_value": 16}),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "spacing_row", "min_value": 0, "max_value": 5, "strict_min": True},
                "mm",
            ),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "spacing_col", "min_value": 0, "max_value": 5, "strict_min": True},
                "mm",
            ),
            Check("ExpectColumnValuesToBeInSet", {"column": "modality", "value_set": list(config.allowed_modalities)}),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "study_date", "min_value": EARLIEST_DATE, "max_value": LATEST_DATE},
                "after shifting",
            ),
            Check("ExpectColumnValuesToBeUnique", {"column": "sop_instance_uid"}, "within a batch; dataset-wide below"),
        ],
        "images": [
            *_not_null("sop_instance_uid", "study_instance_uid", "dtype", "profile", "pixels_length"),
            Check("ExpectColumnValuesToBeInSet", {"column": "shape_h", "value_set": [height]}, "the profile's shape"),
            Check("ExpectColumnValuesToBeInSet", {"column": "shape_w", "value_set": [width]}, "the profile's shape"),
            Check(
                "ExpectColumnPairValuesToBeEqual",
                {"column_A": "pixels_length", "column_B": "pixels_expected"},
                "pixels match shape x dtype",
            ),
            Check("ExpectColumnValuesToBeUnique", {"column": "sop_instance_uid"}),
        ],
        "volumes": [
            *_not_null("series_instance_uid", "study_instance_uid", "modality", "profile", "n_slices"),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "modality", "value_set": sorted(Modality.cross_sectional())},
                "CT and MR series only",
            ),
            Check("ExpectColumnValuesToBeUnique", {"column": "series_instance_uid"}, "one volume per series"),
            Check("ExpectColumnValuesToBeBetween", {"column": "n_slices", "min_value": 1}),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "pixels_iff_no_issues", "value_set": [True]},
                "assembled exactly when the geometry had no issue: never silently",
            ),
            Check("ExpectColumnValuesToBeInSet", {"column": "shape_ok", "value_set": [True]}, "the profile's size"),
            Check(
                "ExpectColumnValuesToBeInSet", {"column": "spacing_ok", "value_set": [True]}, "the profile's spacing"
            ),
            Check("ExpectColumnValuesToBeInSet", {"column": "bytes_ok", "value_set": [True]}, "pixels = shape x dtype"),
        ],
        "reports": [
            *_not_null("report_id", "text"),
            Check("ExpectColumnValuesToBeUnique", {"column": "report_id"}),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "has_sections", "value_set": [True], "mostly": config.report_sections_mostly},
                "FINDINGS or IMPRESSION present for most reports",
            ),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "labelled_language", "value_set": [True], "mostly": config.labelled_language_mostly},
                "most reports in a language the labeller has rules for (the rest are counted)",
            ),
        ],
        "studies": [
            *_not_null("study_instance_uid", "patient_id", "split"),
            Check("ExpectColumnValuesToBeInSet", {"column": "split", "value_set": ["train", "validation", "test"]}),
            Check("ExpectColumnValuesToBeUnique", {"column": "study_instance_uid"}),
        ],
    }


def dataset_suite(config: QualityConfig) -> list[Check]:
    """Checks on the one-row table of dataset-wide metrics (radpipe/quality/dataset_checks.py)."""

    def zero(column: str, why: str) -> Check:
        return Check("ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0, "max_value": 0}, why)

    return [
        zero("duplicate_sop_instance_uids", "UIDs unique across the whole instances/ table"),
        zero("duplicate_image_uids", "one image per instance across the whole images/ table"),
        zero("images_without_instance", "every image joins its instance"),
        zero("duplicate_study_uids", "one row per study in studies/"),
        zero("duplicate_report_ids", "each report once across the whole reports/ table"),
        zero("patients_in_several_splits", "no patient leaks across splits"),
        zero("studies_without_split", "every study has a split"),
        zero("synthetic_in_evaluation_splits", "synthetic data never in validation/test of a real dataset"),
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "quarantine_rate", "min_value": 0, "max_value": config.max_quarantine_rate},
            "quarantine rate below the ceiling",
        ),
        Check("ExpectColumnValuesToBeBetween", {"column": "instances", "min_value": 1}, "not empty"),
    ]
