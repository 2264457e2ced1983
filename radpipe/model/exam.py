"""The examination a report belongs to, as the words a model of radiographs and volumes reads first.

A model trained on radiographs and CT/MR volumes (model.image.radiographs) reads each report after a line
naming its examination ("CT of the chest."), made from the DICOM header (Modality, BodyPartExamined: neither
identifies anyone). Zero-shot modality recognition asks the same lines back (radpipe/evaluate/modality.py).
"""

from __future__ import annotations

import zlib

# DICOM Modality values of projection radiographs: computed, digital, digital radiography, radiographic imaging.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})


# Modalities a model of radiographs and volumes names; any other is "other" (metric names stay a known set).
VOLUME_MODALITIES = frozenset({"CT", "MR"})


def modality_kind(modality: str | None) -> str:
    """'radiograph', 'CT', 'MR', 'other', or 'unknown' when the header has none."""
    value = (modality or "").strip().upper()
    if value in RADIOGRAPH_MODALITIES:
        return "radiograph"
    if value in VOLUME_MODALITIES:
        return value
    return "other" if value else "unknown"


def body_part_words(body_part: str | None) -> str:
    """BodyPartExamined as words ('CHEST' -> 'chest', 'ABDOMEN_PELVIS' -> 'abdomen pelvis'); '' when absent."""
    return " ".join((body_part or "").replace("_", " ").lower().split())


def exam_line(kind: str, body_part: str = "") -> str:
    """'Radiograph of the chest.', 'CT of the chest.', 'MR.' (no body part known), 'Other examination.'."""
    name = {"radiograph": "Radiograph", "other": "Other examination", "unknown": "Unknown examination"}.get(kind, kind)
    return f"{name} of the {body_part}." if body_part else f"{name}."


def with_exam(text: str, modality: str | None, body_part: str | None) -> str:
    """The report text a model of radiographs and volumes reads: its examination line, then the text."""
    return f"{exam_line(modality_kind(modality), body_part_words(body_part))} {text}"


def other_modality(modality: str | None, key: str) -> str:
    """Another modality than `modality` (a DICOM value) for a hard negative: CT becomes MR and MR becomes CT; a
    radiograph becomes CT or MR (and any other modality one of the three), chosen by `key` reproducibly.

    A volume's hard negative is always the other volume modality: a volume is far from every radiograph prompt
    already, and CT against MR is the distinction a model learns least. With CT or a radiograph at random, a
    demo model's text side put "CT of the chest" and "MR of the chest" at cosine 0.999, and CT series whose
    short z-coverage was padded on the profile's grid were all called MR (0 of 23)."""
    kind = modality_kind(modality)
    if kind in ("CT", "MR"):
        return "MR" if kind == "CT" else "CT"
    others = [value for value, other in (("DX", "radiograph"), ("CT", "CT"), ("MR", "MR")) if other != kind]
    return others[zlib.crc32(key.encode()) % len(others)]
