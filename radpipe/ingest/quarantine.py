"""Why an input was rejected: a stage, a reason code, and a detail that never carries PHI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    READ = "read"
    HEADER = "header"
    PIXELS = "pixels"
    DEDUP = "dedup"
    PRIVACY = "privacy"
    REPORT = "report"


class Reason(StrEnum):
    UNREADABLE = "unreadable"  # the file could not be opened or read
    EMPTY_FILE = "empty_file"
    NOT_DICOM = "not_dicom"
    TRUNCATED = "truncated"  # the file or its pixel data ends early
    NO_PIXELS = "no_pixels"
    INCONSISTENT_HEADER = "inconsistent_header"  # missing UIDs, impossible sizes or bit depths
    UNDECODABLE = "undecodable"
    BLANK_IMAGE = "blank_image"  # constant after windowing: nothing to learn, likely a broken LUT
    UNSUPPORTED_MODALITY = "unsupported_modality"  # written by radpipe before outside_profile named the rule
    OUTSIDE_PROFILE = "outside_profile"  # not what the profile is for: modality, body part, view, size, species
    UNSUPPORTED_IMAGE = "unsupported_image"  # colour or multi-frame projection images
    BURNED_IN_ANNOTATION = "burned_in_annotation"  # BurnedInAnnotation = YES
    BURNED_IN_RISK = "burned_in_risk"  # US/SC/OT or secondary capture without BurnedInAnnotation = NO
    ERASED_PATIENT = "erased_patient"  # the patient's records were erased on request; not ingested again
    IDENTIFIER_IN_TEXT = "identifier_in_text"  # the PHI gate found a source identifier in a report's text
    IDENTIFIER_IN_HEADER = "identifier_in_header"  # ... in a value taken from a DICOM header
    DUPLICATE = "duplicate"  # a second copy of an instance or report already ingested
    PARSE_ERROR = "parse_error"
    MISSING_TEXT = "missing_text"
    MISSING_KEY = "missing_key"
    UNSUPPORTED_FORMAT = "unsupported_format"


@dataclass(frozen=True)
class Quarantined:
    """One quarantine/ row (before the batch id is attached)."""

    source_key: str
    stage: Stage
    reason: Reason
    detail: str
    position: int = 0

    def row(self) -> dict[str, object]:
        return {
            "source_key": self.source_key,
            "stage": self.stage.value,
            "reason": self.reason.value,
            "detail": self.detail,
            "position": self.position,
        }


_UID_LIKE = re.compile(r"\b\d+(?:\.\d+){3,}\b")
_LONG_NUMBER = re.compile(r"\d{5,}")


def safe_detail(message: str, source_path: str) -> str:
    """Strip anything identifying from a library's message: the path, its parts, UIDs, long numbers."""
    text = message
    parts = [p for p in re.split(r"[/\\]", source_path) if len(p) > 2]
    for part in sorted({source_path, *parts}, key=len, reverse=True):
        text = text.replace(part, "<path>")
    text = _UID_LIKE.sub("<uid>", text)
    text = _LONG_NUMBER.sub("<n>", text)
    return text[:200]
