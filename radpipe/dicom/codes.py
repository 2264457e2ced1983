"""Coded DICOM values radpipe acts on."""

from __future__ import annotations

from enum import StrEnum


class Modality(StrEnum):
    """Modalities; 2D projection radiography goes to images/, cross-sectional series to volumes/."""

    CR = "CR"
    DX = "DX"
    MG = "MG"
    CT = "CT"
    MR = "MR"
    PT = "PT"
    US = "US"
    SC = "SC"
    OT = "OT"

    @classmethod
    def projection(cls) -> frozenset[str]:
        return frozenset({cls.CR.value, cls.DX.value})

    @classmethod
    def cross_sectional(cls) -> frozenset[str]:
        """Series of slices assembled into volumes/."""
        return frozenset({cls.CT.value, cls.MR.value})


class Photometric(StrEnum):
    MONOCHROME1 = "MONOCHROME1"  # minimum value displays white: invert after windowing
    MONOCHROME2 = "MONOCHROME2"
    RGB = "RGB"


class ViewPosition(StrEnum):
    PA = "PA"
    AP = "AP"
    LATERAL = "LATERAL"
    LL = "LL"
    RL = "RL"
