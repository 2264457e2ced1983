"""Source identifiers in normalised forms, as keyed hashes: what the PHI gate looks for.

The forms are hashed with the de-identification key before they leave the worker, so the list the
gate keeps (under RADPIPE_HOME) reveals nothing without the key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pydicom.dataset import Dataset

# Header attributes whose values identify a person, a place or an encounter.
IDENTIFYING_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthDate",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "AccessionNumber",
    "StudyID",
    "StationName",
    "DeviceSerialNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)
MAX_NGRAM = 6
# A single word or number shorter than this ("1", "CT", "Li") is too common to mean one person; such
# values are still caught in longer forms ("Li Wei", a full address).
MIN_SINGLE_FORM = 4
_TOKEN = re.compile(r"[a-z0-9]+")
_UID = re.compile(r"\d+(?:\.\d+){2,}")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b|\b(\d{4})-(\d{2})-(\d{2})\b")
# Name parts too common or short to mean a person on their own.
_NOT_A_NAME = frozenset({"dr", "mr", "mrs", "ms", "jr", "sr", "md", "phd", "the", "of", "and"})
# Words that are identifiers in one header and everyday clinical words in every report: a single-word
# form equal to one of these would stop every dataset. They still count inside longer forms.
CLINICAL_WORDS = frozenset(
    "chest mass long portable lung lungs heart left right lateral frontal upper lower view views study "
    "exam image images normal clear small large mild moderate severe acute chronic with without tube line "
    "bone spine film films room radiology imaging department general hospital clinic center centre ward "
    "station unit main north south east west new old stable prior".split()
)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


def header_values(ds: Dataset) -> list[str]:
    """Identifying values of a source header, including string values of private tags.

    A value that cannot be decoded is skipped (it cannot leak through a table either); never raises.
    """
    values: list[str] = []
    for keyword in IDENTIFYING_KEYWORDS:
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: S112 - a malformed value must not stop the file
            continue
        if value is None or value == "":
            continue
        items = value if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]
        values.extend(str(item) for item in items if str(item).strip())
    for tag in ds.keys():  # tags only: elements are decoded just for private ones
        if not tag.is_private or tag.element < 0x100:
            continue  # public, or a private creator (it names a vendor's block, not a person)
        try:
            element = ds[tag]
            text = str(element.value) if element.VR in _PRIVATE_TEXT_VRS and element.value else ""
        except Exception:  # noqa: S112
            continue
        if len(text.strip()) >= 4:
            values.append(text)
    return values


_PRIVATE_TEXT_VRS = ("LO", "SH", "PN", "LT", "ST", "UT", "CS")


def identifier_forms(values: Iterable[str]) -> set[str]:
    """Normal forms an identifier may take in a table: whole, word windows, name parts, dates."""
    forms: set[str] = set()
    for value in values:
        compact = value.strip()
        if _UID.fullmatch(compact):  # a UID is matched whole: its numeric parts are shared by every UID
            forms.add(compact)
            continue
        parts = value.split("^")
        words = tokens(value.replace("^", " "))
        if not words:
            continue
        if len(words) <= MAX_NGRAM and (len(words) > 1 or len(words[0]) >= MIN_SINGLE_FORM):
            forms.add(" ".join(words))
        compact = "".join(words)  # "MRN-0012345" also as "mrn0012345", and its digits "0012345"
        if len(words) > 1 and len(compact) >= MIN_SINGLE_FORM:
            forms.add(compact)
        forms.update(word for word in words if word.isdigit() and len(word) >= 5)
        forms.update(" ".join(words[i : i + 3]) for i in range(max(0, len(words) - 2)) if len(words) >= 3)
        if len(parts) > 1:  # a DICOM person name: Family^Given^Middle^Prefix^Suffix
            given_family = tokens(" ".join(parts[1:2] + parts[:1]))
            if given_family:
                forms.add(" ".join(given_family))
            forms.update(word for word in words if len(word) >= MIN_SINGLE_FORM and word not in _NOT_A_NAME)
    # Too little to mean anyone ("1 0 1", "CT 2"), or an everyday clinical word on its own.
    return {form for form in forms if sum(c.isalnum() for c in form) >= MIN_SINGLE_FORM and form not in CLINICAL_WORDS}


ANCHOR = "\x01anchor\x00"  # marks the hash of a form's first word (see IdentifierIndex)


class FormHasher:
    """Keyed BLAKE2b of normal forms: one C call each, memoised (report vocabularies are small)."""

    def __init__(self, key: bytes) -> None:
        self.key = hashlib.sha256(b"radpipe-phi-gate\x00" + key).digest()  # BLAKE2b keys are <= 64 bytes
        self.memo: dict[str, str] = {}

    def __call__(self, form: str) -> str:
        found = self.memo.get(form)
        if found is None:
            found = hashlib.blake2b(form.encode(), key=self.key, digest_size=10).hexdigest()
            if len(self.memo) < 2_000_000:
                self.memo[form] = found
        return found


def gate_hashes(key: bytes, forms: Iterable[str]) -> set[str]:
    """What the gate stores for a set of forms: each form's hash, and an anchor hash of its first word."""
    hasher = FormHasher(key)
    result = set()
    for form in forms:
        result.add(hasher(form))
        result.add(hasher(ANCHOR + form.split(" ", 1)[0]))
    return result


class IdentifierIndex:
    """Finds identifier forms in text with one memoised hash per word: n-grams are built only from
    words that begin some identifier form (an anchor), which clinical words almost never do."""

    def __init__(self, key: bytes, stored: set[str]) -> None:
        self.hash = FormHasher(key)
        self.stored = stored
        self.anchor_memo: dict[str, bool] = {}

    def _anchor(self, word: str) -> bool:
        known = self.anchor_memo.get(word)
        if known is None:
            known = self.hash(ANCHOR + word) in self.stored
            self.anchor_memo[word] = known
        return known

    def contains(self, text: str) -> bool:
        words = tokens(text)
        for start, word in enumerate(words):
            if self._anchor(word):
                for size in range(1, min(MAX_NGRAM, len(words) - start) + 1):
                    if self.hash(" ".join(words[start : start + size])) in self.stored:
                        return True
        for uid in _UID.findall(text):
            if self.hash(uid) in self.stored:
                return True
        for match in _NUMERIC_DATE.finditer(text):
            if match.group(3):
                month, day, year = match.group(1), match.group(2), match.group(3)
            else:
                year, month, day = match.group(4), match.group(5), match.group(6)
            if self.hash(f"{year}{int(month):02d}{int(day):02d}") in self.stored:
                return True
        return False
