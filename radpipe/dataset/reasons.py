"""The vocabulary of quarantine/: the stage that rejected an input and why (radpipe's own codes, no PHI).

Low in the package, so readers (radpipe/reports) and checks (radpipe/deid) return these values, not strings.
"""

from __future__ import annotations

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
