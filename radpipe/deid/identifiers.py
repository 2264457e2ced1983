"""Source identifiers in normalised forms, as keyed hashes: what the PHI gate looks for.

The forms are hashed with the de-identification key before they leave the worker, so the list the
gate keeps (under RADPIPE_HOME) reveals nothing without the key.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydicom.dataset import Dataset


class PhiKind(StrEnum):
    """What sort of identifier a form came from: a gate hit names it (never the value)."""

    NAME = "person name"
    PATIENT_ID = "patient id"
    ACCESSION = "accession number"
    STUDY_ID = "study or visit id"
    UID = "source uid"
    DATE = "date"
    CONTACT = "address or phone"
    INSTITUTION = "institution or device"
    PRIVATE = "private tag value"


# Header attributes whose values identify a person, a visit or an institution (Annex E, action other than K).
IDENTIFYING: dict[str, PhiKind] = {
    "PatientName": PhiKind.NAME,
    "PatientID": PhiKind.PATIENT_ID,
    "OtherPatientIDs": PhiKind.PATIENT_ID,
    "OtherPatientNames": PhiKind.NAME,
    "PatientBirthDate": PhiKind.DATE,
    "PatientAddress": PhiKind.CONTACT,
    "PatientTelephoneNumbers": PhiKind.CONTACT,
    "PatientMotherBirthName": PhiKind.NAME,
    "InstitutionName": PhiKind.INSTITUTION,
    "InstitutionAddress": PhiKind.CONTACT,
    "ReferringPhysicianName": PhiKind.NAME,
    "PerformingPhysicianName": PhiKind.NAME,
    "NameOfPhysiciansReadingStudy": PhiKind.NAME,
    "OperatorsName": PhiKind.NAME,
    "RequestingPhysician": PhiKind.NAME,
    "AccessionNumber": PhiKind.ACCESSION,
    "StudyID": PhiKind.STUDY_ID,
    "StationName": PhiKind.INSTITUTION,
    "DeviceSerialNumber": PhiKind.INSTITUTION,
    "StudyInstanceUID": PhiKind.UID,
    "SeriesInstanceUID": PhiKind.UID,
    "SOPInstanceUID": PhiKind.UID,
}
IDENTIFYING_KEYWORDS: tuple[str, ...] = tuple(IDENTIFYING)
# Values the de-identification keeps (action K) and writes to instances/: they are in the dataset by policy, so
# an identifier form equal to one ("Philips Medical Systems" as both institution and manufacturer) is not a leak.
KEPT_IN_TABLES = ("Manufacturer", "Modality", "BodyPartExamined", "ViewPosition", "PhotometricInterpretation")
# UIDs under the DICOM root name SOP classes, transfer syntaxes and coding schemes: the same in every archive.
STANDARD_UID_ROOT = "1.2.840.10008."
# Private text; CS (coded strings: "PRIMARY", "PIXEL") never identifies anyone.
_PRIVATE_TEXT_VRS = ("LO", "SH", "PN", "LT", "ST", "UT")
MAX_NGRAM = 6
# A single word or number shorter than this ("1", "CT", "Li") is too common to mean one person; such
# values are still caught in longer forms ("Li Wei", a full address).
MIN_SINGLE_FORM = 4
# A form of digits only ("1 2 840" out of a version string) needs this many digits to single anyone out.
MIN_NUMERIC_FORM = 6
_TOKEN = re.compile(r"[a-z0-9]+", re.IGNORECASE | re.ASCII)
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
    return [word.lower() for word in _TOKEN.findall(text)]


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if len(base) == 1 else char


def fold_accents(text: str) -> str:
    """Accented letters as their base letter, one character for one ("GARCÍA" -> "GARCIA"): offsets stay valid."""
    return text if text.isascii() else "".join(_fold_char(c) for c in text)


def _as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]
    return [str(item) for item in items if str(item).strip()]


def header_values(ds: Dataset) -> list[tuple[PhiKind, str]]:
    """Identifying values of a source header, including text values of private tags.

    A value that cannot be decoded is skipped (it cannot leak through a table either); never raises.
    """
    values: list[tuple[PhiKind, str]] = []
    for keyword, kind in IDENTIFYING.items():
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: S112 - a malformed value must not stop the file
            continue
        if value is not None and value != "":
            values.extend((kind, item) for item in _as_list(value))
    for tag in ds.keys():  # tags only: elements are decoded just for private ones
        if not tag.is_private or tag.element < 0x100:
            continue  # public, or a private creator (it names a vendor's block, not a person)
        try:
            element = ds[tag]
            text = str(element.value) if element.VR in _PRIVATE_TEXT_VRS and element.value else ""
        except Exception:  # noqa: S112
            continue
        if len(text.strip()) >= 4:
            values.append((PhiKind.PRIVATE, text))
    return values


def header_forms(ds: Dataset) -> dict[str, PhiKind]:
    """The identifier forms of one source header (what ingest collects for the PHI gate)."""
    kept: set[str] = set()
    for keyword in KEPT_IN_TABLES:
        try:
            kept.update(" ".join(tokens(v)) for v in _as_list(ds.get(keyword) or ""))
        except Exception:  # noqa: S112
            continue
    return {form: kind for form, kind in identifier_forms(header_values(ds)).items() if form not in kept}


def identifier_forms(values: Iterable[tuple[PhiKind, str]]) -> dict[str, PhiKind]:
    """Normal forms an identifier may take in a table (whole, word windows, name parts, dates), with its kind."""
    forms: dict[str, PhiKind] = {}
    for kind, value in values:
        for form in _forms(kind, value):
            forms.setdefault(form, kind)
    return forms


def _forms(kind: PhiKind, value: str) -> set[str]:
    """A value's forms, and those of its accent-free spelling: a report may write "Garcia" for GARCÍA."""
    folded = fold_accents(value)
    return _value_forms(kind, value) | (_value_forms(kind, folded) if folded != value else set())


def _value_forms(kind: PhiKind, value: str) -> set[str]:
    compact = value.strip()
    if _UID.fullmatch(compact):  # a UID is matched whole: its numeric parts are shared by every UID
        return set() if compact.startswith(STANDARD_UID_ROOT) else {compact}
    forms = {uid for uid in _UID.findall(value) if not uid.startswith(STANDARD_UID_ROOT)}
    value = _UID.sub(" ", value)  # a UID inside text (a private path) is whole or nothing, never "1 2 840"
    words = tokens(value.replace("^", " "))
    if not words:
        return forms
    forms |= _word_forms(words)
    parts = value.split("^")
    if len(parts) > 1:
        forms |= _person_name_forms(parts, words)
    return {form for form in forms if _specific(kind, form)}


def _word_forms(words: list[str]) -> set[str]:
    """The words together, joined ("MRN-0012345" also as "mrn0012345"), long numbers, and word trigrams."""
    forms = set()
    if len(words) <= MAX_NGRAM and (len(words) > 1 or len(words[0]) >= MIN_SINGLE_FORM):
        forms.add(" ".join(words))
    joined = "".join(words)
    if len(words) > 1 and len(joined) >= MIN_SINGLE_FORM:
        forms.add(joined)
    forms.update(word for word in words if word.isdigit() and len(word) >= 5)
    forms.update(" ".join(words[i : i + 3]) for i in range(max(0, len(words) - 2)) if len(words) >= 3)
    return forms


def _person_name_forms(parts: list[str], words: list[str]) -> set[str]:
    """A DICOM person name (Family^Given^Middle^Prefix^Suffix): given-family order, each name whole, each word."""
    forms = set()
    given_family = tokens(" ".join(parts[1:2] + parts[:1]))
    if given_family:
        forms.add(" ".join(given_family))
    for part in parts[:2]:  # the family name whole ("de vries", "van der berg"), and the given names whole
        part_words = tokens(part)
        if 1 < len(part_words) <= MAX_NGRAM:
            forms.add(" ".join(part_words))
        if 1 < len(part_words) and "".join(part_words) not in _NOT_A_NAME:
            forms.add("".join(part_words))  # written without its apostrophe or hyphen: "ONEIL", "Alhashimi"
    forms.update(word for word in words if len(word) >= MIN_SINGLE_FORM and word not in _NOT_A_NAME)
    return forms


def _specific(kind: PhiKind, form: str) -> bool:
    """Whether a form can single anyone out (and is not an everyday word)."""
    if sum(c.isalnum() for c in form) < MIN_SINGLE_FORM or form in CLINICAL_WORDS:
        return False  # "1 0 1", "CT 2", "chest"
    digits = form.replace(" ", "")
    if digits.isdigit() and len(digits) < MIN_NUMERIC_FORM and not _UID.fullmatch(form):
        return False
    # One vendor word from a private tag ("TOSHIBA", "PIXEL", "ORIGINAL") says nothing of a person; IDs do.
    return not (kind is PhiKind.PRIVATE and " " not in form and form.isalpha())


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
            if len(form) < 32 and len(self.memo) < 200_000:  # words repeat; UIDs and n-grams rarely do
                self.memo[form] = found
        return found


def gate_hashes(key: bytes, forms: dict[str, PhiKind]) -> dict[str, str]:
    """What the gate stores for forms: each form's hash and an anchor hash of its first word, with the kind."""
    hasher = FormHasher(key)
    result: dict[str, str] = {}
    for form, kind in forms.items():
        result.setdefault(hasher(form), kind.value)
        result.setdefault(hasher(ANCHOR + form.split(" ", 1)[0]), kind.value)
    return result


def _digit_counts(words: list[str]) -> list[int]:
    return [sum(c.isdigit() for c in word) for word in words]


def _joined_window(digits: list[int], start: int, end: int) -> bool:
    """Whether words[start:end] (given their digit counts) may be read as one ID written apart: it begins or ends
    with a digit-bearing word and is all numbers or holds enough digits to be specific. With a word of letters in
    it, only a long number: "cxr,786.2" (a code) is not the accession CXR786."""
    if not (digits[start] or digits[end - 1]):
        return False
    window = digits[start:end]
    return all(window) or sum(window) >= MIN_NUMERIC_FORM


def _longest_first(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans found in two spellings of one text, without overlaps: at each place the longest wins."""
    kept: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):
        if kept and span[0] < kept[-1][1]:
            continue
        kept.append(span)
    return kept


class IdentifierIndex:
    """Finds identifier forms in text with one memoised hash per word: n-grams are built only from
    words that begin some identifier form (an anchor), which clinical words almost never do."""

    def __init__(self, key: bytes, stored: dict[str, str]) -> None:
        self.hash = FormHasher(key)
        self.stored = stored
        self.anchor_memo: dict[str, bool] = {}

    def _anchor(self, word: str) -> bool:
        known = self.anchor_memo.get(word)
        if known is None:
            known = self.hash(ANCHOR + word) in self.stored
            if len(self.anchor_memo) < 200_000:  # words repeat; the parts of UIDs and IDs do not
                self.anchor_memo[word] = known
        return known

    def find(self, text: str, specific_only: bool = False) -> str | None:
        """The kind of the first identifier form in `text`, or None.

        `specific_only` skips one-word alphabetic forms (a name part): for text radpipe writes itself
        (quarantine details), where "modality" is radpipe's word even when a test patient is called so.
        """
        for _, _, kind in self.spans(text, specific_only):
            return kind
        for match in _NUMERIC_DATE.finditer(text):
            if match.group(3):
                month, day, year = match.group(1), match.group(2), match.group(3)
            else:
                year, month, day = match.group(4), match.group(5), match.group(6)
            dated = self.stored.get(self.hash(f"{year}{int(month):02d}{int(day):02d}"))
            if dated is not None:
                return dated
        return None

    def probes(self, text: str) -> set[str]:
        """Every hash through which some identifier store could make `find` report `text`, whatever it holds.

        A spaced word window is looked up only after its first word's anchor, so the anchor of each word stands
        for all the windows it begins; joined windows, UIDs and dates are looked up whole. A store grown by
        new entries can find something new in `text` only if the new hashes meet these (gate_index.py): the
        hashes of every form come with the anchor of its first word (`gate_hashes`).
        """
        found = {self.hash(uid) for uid in _UID.findall(text)}
        for variant in {text, fold_accents(text)}:
            words = tokens(variant)
            found.update(self.hash(ANCHOR + word) for word in set(words))
            digits = _digit_counts(words)
            if not any(digits):
                continue
            for start in range(len(words)):
                for end in range(start + 2, min(start + MAX_NGRAM, len(words)) + 1):
                    if _joined_window(digits, start, end):
                        found.add(self.hash("".join(words[start:end])))
        for match in _NUMERIC_DATE.finditer(text):
            if match.group(3):
                month, day, year = match.group(1), match.group(2), match.group(3)
            else:
                year, month, day = match.group(4), match.group(5), match.group(6)
            found.add(self.hash(f"{year}{int(month):02d}{int(day):02d}"))
        return found

    def spans(self, text: str, specific_only: bool = False) -> list[tuple[int, int, str]]:
        """(start, end, kind) of every identifier form in `text`, the longest at each word, not overlapping.

        Word windows match spaced ("jane doe") or joined (an MRN "00123456" written "0012-3456"); UIDs whole.
        """
        found = self._spans(text, specific_only)
        folded = fold_accents(text)
        if folded != text:  # "García" in the text for GARCIA in a header (and the accented spelling as written)
            found = _longest_first(found + self._spans(folded, specific_only))
        for uid in _UID.finditer(text):
            kind = self.stored.get(self.hash(uid.group()))
            if kind is not None:
                found.append((uid.start(), uid.end(), kind))
        return sorted(found)

    def _spans(self, text: str, specific_only: bool) -> list[tuple[int, int, str]]:
        words = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]
        digits = _digit_counts([w for _, _, w in words])
        found: list[tuple[int, int, str]] = []
        position = 0
        while position < len(words):
            size, kind = self._longest(words, digits, position, specific_only)
            if kind is None:
                position += 1
                continue
            found.append((words[position][0], words[position + size - 1][1], kind))
            position += size
        return found

    def _longest(
        self, words: list[tuple[int, int, str]], digits: list[int], position: int, specific_only: bool
    ) -> tuple[int, str | None]:
        anchored = self._anchor(words[position][2])
        for size in range(min(MAX_NGRAM, len(words) - position), 0, -1):
            window = [w for _, _, w in words[position : position + size]]
            if anchored and not (size == 1 and specific_only and window[0].isalpha()):
                kind = self.stored.get(self.hash(" ".join(window)))
                if kind is not None:
                    return size, kind
            # An ID written with other separators or spacing ("NM 2023/5510", "K 229 0417" for "K2290417"). With a
            # word of letters in it, only a long number: "cxr,786.2" (a code) is not the accession CXR786.
            if size > 1 and _joined_window(digits, position, position + size):
                kind = self.stored.get(self.hash("".join(window)))
                if kind is not None:
                    return size, kind
        return 0, None
