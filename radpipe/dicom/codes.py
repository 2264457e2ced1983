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


# Defined terms of Modality (PS3.3 C.7.3.1.1.1) and of BodyPartExamined (PS3.16 Annex L, plus the QA words
# scanners write): a value in these lists is a code and may be named in a quarantine detail; any other value
# (free text could be anything) is not echoed.
DEFINED_MODALITIES = frozenset(
    "AR ASMT AU BDUS BI BMD CR CT CTPROTOCOL DG DOC DX ECG EPS ES FID GM HC HD IO IOL IVOCT IVUS KER KO LEN LS "
    "MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN PR PT PX REG RESP RF RG RTDOSE RTIMAGE "
    "RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XC".split()
)
DEFINED_BODY_PARTS = frozenset(
    "ABDOMEN ABDOMENPELVIS ANKLE ARM BREAST CHEST CHESTABDOMEN CHESTABDPELVIS CLAVICLE COCCYX CSPINE ELBOW "
    "EXTREMITY FOOT FOREARM HAND HEAD HEADNECK HEART HIP HUMERUS JAW KNEE LEG LSPINE LUNG NECK PELVIS RIB "
    "SACRUM SCAPULA SHOULDER SKULL SPINE STERNUM THORAX TSPINE WHOLEBODY WRIST PATTERN PHANTOM QA TEST".split()
)


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
