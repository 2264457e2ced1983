"""Burned-in text: the leak header de-identification cannot fix. Policy: fail closed.

An instance is held back when it says it has burned-in annotation (BurnedInAnnotation = YES), or when
it is of a kind prone to it (ultrasound, secondary capture, "other") and does not say it has none
(BurnedInAnnotation = NO). Operators who have checked a source can allow modalities by name.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from radpipe.dataset.reasons import Reason

PRONE_MODALITIES = frozenset({"US", "SC", "OT", "XC", "ES", "GM", "SM", "DOC"})
# Secondary capture SOP classes: screenshots, scanned films, exported views; text is common.
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


def burned_in_reason(ds: Dataset, allowed_modalities: frozenset[str] = frozenset()) -> Reason | None:
    """Why the instance may show burned-in text (annotation or risk), or None when it may pass."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in allowed_modalities or "ALL" in allowed_modalities:
        return None
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return Reason.BURNED_IN_ANNOTATION
    prone = modality in PRONE_MODALITIES or str(ds.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE_PREFIX)
    if prone and flag != "NO":
        return Reason.BURNED_IN_RISK
    return None
