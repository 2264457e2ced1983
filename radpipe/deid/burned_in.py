"""Burned-in text: the leak header de-identification cannot fix. Policy: fail closed.

An instance is held back when it says it has burned-in annotation (BurnedInAnnotation = YES), or when
it is of a kind prone to it (ultrasound, secondary capture, "other") and does not say it has none
(BurnedInAnnotation = NO). Operators who have checked a source can allow modalities by name.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

PRONE_MODALITIES = frozenset({"US", "SC", "OT", "XC", "ES", "GM", "SM", "DOC"})
# Secondary capture SOP classes: screenshots, scanned films, exported views; text is common.
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


def burned_in_reason(ds: Dataset, allowed_modalities: frozenset[str] = frozenset()) -> str | None:
    """'burned_in_annotation', 'burned_in_risk', or None when the instance may pass."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in allowed_modalities or "ALL" in allowed_modalities:
        return None
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return "burned_in_annotation"
    prone = modality in PRONE_MODALITIES or str(ds.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE_PREFIX)
    if prone and flag != "NO":
        return "burned_in_risk"
    return None
