"""Apply the Annex E profile to a DICOM header: Dataset -> Dataset, recursing into every sequence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID_dictionary

from radpipe import __version__
from radpipe.deid.annex_e import CLEAN_DESCRIPTORS, RESOLVED, Action, AnnexE, basic_profile
from radpipe.deid.pseudonym import IdentifierKind, Pseudonymizer

# DCM codes for the profile and options applied (PS3.16 CID 7050).
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
MODIFIED_DATES_CODE = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")
CLEAN_DESCRIPTORS_CODE = ("113105", "Clean Descriptors Option")
SAFE_PRIVATE_CODE = ("113111", "Retain Safe Private Option")

# Dummy values for action D, by VR (a value that says nothing but keeps the attribute valid).
DUMMY: dict[str, object] = {
    "PN": "ANONYMOUS",
    "LO": "REMOVED",
    "SH": "REMOVED",
    "LT": "REMOVED",
    "ST": "REMOVED",
    "UT": "REMOVED",
    "UC": "REMOVED",
    "CS": "REMOVED",
    "AE": "REMOVED",
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "UR": "http://removed.invalid",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "UL": 0,
    "US": 0,
    "SV": 0,
    "UV": 0,
}
FILE_META_IDENTIFYING = (
    "SourceApplicationEntityTitle",
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "PrivateInformationCreatorUID",
    "PrivateInformation",
)
# Free-text VRs: an attribute the table does not list but of one of these VRs is scrubbed (fail closed).
TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC"})
# Coded or structural text kept as is (scrubbing them would only risk mangling codes).
KEEP_TEXT = frozenset(
    {
        "Manufacturer",
        "ManufacturerModelName",
        "SoftwareVersions",
        "SpecificCharacterSet",
        "ImageType",
        "ConversionType",
        "PresentationIntentType",
        "RescaleType",
        "WindowCenterWidthExplanation",
        "DeidentificationMethod",
        "CodeMeaning",
        "CodingSchemeDesignator",
        "CodeValue",
    }
)

# Identifiers that become keyed pseudonyms (so studies, reports and runs still join) instead of Z.
PSEUDONYMISED: dict[str, IdentifierKind] = {
    "PatientID": IdentifierKind.PATIENT_ID,
    "AccessionNumber": IdentifierKind.ACCESSION_NUMBER,
}


@dataclass(frozen=True)
class HeaderPolicy:
    """How radpipe applies Annex E; every field is an option of the standard or a documented choice."""

    profile: AnnexE = field(default_factory=basic_profile)
    # Option 113107: dates shifted by one secret offset per patient, so intervals survive.
    modified_dates: bool = True
    # Option 113105: descriptions and comments kept after the text scrubber, not removed.
    clean_descriptors: bool = True
    # Option 113111: (private creator, element byte) pairs known to hold no identifiers. Empty by default.
    safe_private: frozenset[tuple[str, int]] = frozenset()


@dataclass
class _Context:
    pseudonymizer: Pseudonymizer
    policy: HeaderPolicy
    shift: dt.timedelta | None  # None: no patient, so no secret shift: dates are removed
    scrub: Callable[[str, list[str]], str]
    known: list[str]  # this header's own identifiers, scrubbed wherever descriptors repeat them


def deidentify_header(
    ds: Dataset, pseudonymizer: Pseudonymizer, policy: HeaderPolicy, scrub: Callable[[str, list[str]], str]
) -> Dataset:
    """De-identify `ds` in place by the policy and return it; the file meta UIDs follow the dataset.

    `scrub(text, known)` cleans free text (Clean Descriptors); `known` lists this header's own
    identifiers (patient name parts, IDs), so a description that repeats them loses them too.
    """
    source_patient = str(ds.get("PatientID", "") or "").strip()
    shift = dt.timedelta(days=pseudonymizer.date_shift_days(source_patient)) if source_patient else None
    context = _Context(pseudonymizer, policy, shift, scrub, _known_identifiers(ds))
    _clean(ds, context)
    study = str(ds.get("StudyInstanceUID", "") or "")  # pseudonymised by now
    if not source_patient and study:
        ds.PatientID = pseudonymizer.stand_in_patient(study)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword in FILE_META_IDENTIFYING:
            if keyword in meta:
                delattr(meta, keyword)  # AE titles name the sending device, often the site
    _record_method(ds, policy, shift is not None)
    return ds


def _clean(ds: Dataset, context: _Context) -> None:
    safe_blocks = _safe_private_elements(ds, context.policy.safe_private)
    for tag in list(ds.keys()):
        if tag.is_private:
            if int(tag) not in safe_blocks:
                del ds[tag]
            continue
        group = tag.group
        if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
            del ds[tag]  # curves and overlays: graphics that can spell out a name
            continue
        _apply(ds, tag, context)


def _known_identifiers(ds: Dataset) -> list[str]:
    known: list[str] = []
    for keyword in ("PatientName", "PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate"):
        value = ds.get(keyword)
        if value:
            text = str(value)
            known.append(text)
            known.extend(part for part in text.split("^") if len(part) >= 3)
            if "^" in text:
                family, given = (text.split("^") + [""])[:2]
                known.append(f"{given} {family}".strip())
    return known


def _safe_private_elements(ds: Dataset, safe: frozenset[tuple[str, int]]) -> set[int]:
    """Tags of private elements on the safe list, and of the creators that reserve them."""
    if not safe:
        return set()
    keep: set[int] = set()
    for tag in ds.keys():
        if tag.is_private and 0x10 <= tag.element <= 0xFF:  # a private creator element
            creator = str(ds[tag].value)
            block = tag.element << 8
            for creator_name, offset in safe:
                if creator_name == creator:
                    keep.add(int(tag))
                    keep.add((tag.group << 16) | block | offset)
    return keep


@lru_cache(maxsize=8192)
def _dictionary_entry(tag: int) -> tuple[str, str | None]:
    """A tag's keyword and dictionary VR (None when the dictionary does not know it): looked up once a process."""
    try:
        return keyword_for_tag(tag), str(dictionary_VR(tag))
    except KeyError:
        return keyword_for_tag(tag), None


def _apply(ds: Dataset, tag: BaseTag, context: _Context) -> None:
    keyword, known_vr = _dictionary_entry(int(tag))
    vr = known_vr if known_vr is not None else str(ds[tag].VR)  # unknown: decode and judge by its own VR
    action = context.policy.profile.action(tag)
    action = RESOLVED.get(action, action) if action is not None else None
    if keyword in PSEUDONYMISED:
        value = str(ds[tag].value or "").strip()
        if value:
            ds[tag].value = context.pseudonymizer.pseudonym(PSEUDONYMISED[keyword], value)
    elif context.policy.modified_dates and vr in ("DA", "DT") and action is not Action.K:
        _shift(ds[tag], context.shift)
    elif context.policy.clean_descriptors and keyword in CLEAN_DESCRIPTORS and vr not in ("SQ",):
        if ds[tag].value:  # any descriptor value, scrubbed as its text
            ds[tag].value = context.scrub(str(ds[tag].value), context.known)
    elif action is None:
        _unlisted(ds, tag, vr, context)
    else:
        _annex_e_action(ds, tag, vr, action, context)


def _annex_e_action(ds: Dataset, tag: BaseTag, vr: str, action: Action, context: _Context) -> None:
    """The basic profile's action for a listed attribute (after the options resolved it)."""
    if action is Action.X:
        del ds[tag]
    elif action is Action.Z:
        ds[tag].value = Sequence() if vr == "SQ" else ("" if vr not in DUMMY or isinstance(DUMMY[vr], str) else None)
    elif action is Action.U:
        _uid(ds[tag], context)
    elif action is Action.D:
        _dummy(ds, tag, vr, context)
    elif action is Action.C:
        _scrub_text(ds[tag], context)
    # Action.K: keep as is.


def _scrub_text(element: DataElement, context: _Context) -> None:
    if isinstance(element.value, str) and element.value:
        element.value = context.scrub(element.value, context.known)


def _unlisted(ds: Dataset, tag: BaseTag, vr: str, context: _Context) -> None:
    """Attributes Annex E does not list are kept, with three fail-closed guards."""
    if vr == "SQ":
        for item in ds[tag].value or ():
            _clean(item, context)
    elif vr == "PN":
        del ds[tag]  # a person's name in an attribute the table does not know
    elif vr == "UI":
        _uid(ds[tag], context)
    elif vr in TEXT_VRS and _dictionary_entry(int(tag))[0] not in KEEP_TEXT:
        _scrub_text(ds[tag], context)


def _uid(element: DataElement, context: _Context) -> None:
    def replace(value: str) -> str:
        # Registered standard UIDs (SOP classes, transfer syntaxes, coding schemes) identify no one.
        return value if value in UID_dictionary else context.pseudonymizer.uid(value)

    if not element.value:
        return
    if element.VM == 1:
        element.value = replace(str(element.value))
    else:
        element.value = [replace(str(v)) for v in element.value]


def _dummy(ds: Dataset, tag: BaseTag, vr: str, context: _Context) -> None:
    if vr == "SQ":
        ds[tag].value = Sequence()
    elif vr == "UI":
        _uid(ds[tag], context)
    elif vr in DUMMY:
        ds[tag].value = DUMMY[vr]
    else:
        del ds[tag]  # OB/OW/UN and other binary values have no meaningful dummy


def _shift(element: DataElement, shift: dt.timedelta | None) -> None:
    if not element.value:
        return
    values = [element.value] if element.VM == 1 else list(element.value)
    if shift is None:
        element.value = ""
        return
    shifted = []
    for value in values:
        text = str(value)
        day = shift_date(text[:8], shift)
        shifted.append("" if day is None else day + (text[8:] if element.VR == "DT" else ""))
    element.value = shifted[0] if element.VM == 1 else shifted


def shift_date(value: str, shift: dt.timedelta) -> str | None:
    """Shift a DICOM (YYYYMMDD) or ISO (YYYY-MM-DD) date; None when it does not parse or overflows."""
    digits = value.strip().replace("-", "")[:8]
    try:
        return (dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) + shift).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None


@lru_cache(maxsize=16)
def _code_items(codes: tuple[tuple[str, str], ...]) -> tuple[Dataset, ...]:
    """The code items, built once per set of options (building pydicom Datasets per file is slow)."""
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    return tuple(items)


def _record_method(ds: Dataset, policy: HeaderPolicy, dates_shifted: bool) -> None:
    """PatientIdentityRemoved, DeidentificationMethod and its code sequence (PS3.15 E.1.1)."""
    codes = [BASIC_PROFILE_CODE]
    if policy.modified_dates and dates_shifted:
        codes.append(MODIFIED_DATES_CODE)
    if policy.clean_descriptors:
        codes.append(CLEAN_DESCRIPTORS_CODE)
    if policy.safe_private:
        codes.append(SAFE_PRIVATE_CODE)
    ds.PatientIdentityRemoved = "YES"
    # LO allows 64 characters a value and many values: the tool, then each profile and option applied.
    ds.DeidentificationMethod = [f"radpipe {__version__}", *(meaning for _, meaning in codes)]
    ds.DeidentificationMethodCodeSequence = Sequence(list(_code_items(tuple(codes))))
    if policy.modified_dates and dates_shifted:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
