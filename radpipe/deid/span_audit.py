"""Measure the report scrubber on lines annotated with identifier spans (tests/deid/data, README there).

Each line carries what a header would say about its patient (`record`): the scrubber gets it the way
ingest does, as the record's own keys plus the keyed identifier index built from the header's forms.
Recall counts identifier spans gone from the output; retention counts identifier-free lines left intact.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radpipe.deid.identifiers import IdentifierIndex, PhiKind, gate_hashes, identifier_forms
from radpipe.deid.text import scrub_text
from radpipe.errors import SourceError

AUDIT_KEY = b"radpipe-span-audit-key-not-secret"
_WORD = re.compile(r"[a-z0-9]+")
# Particles inside a name span that are ordinary words elsewhere ("de" in "14 de marzo").
_WORDY = frozenset({"name", "institution", "address", "email", "url"})  # identified by their words
_PARTICLES = frozenset({"de", "del", "la", "van", "der", "von", "y", "da", "di", "le"})


@dataclass
class SpanMeasure:
    lines: int = 0
    spans: int = 0
    leaked: int = 0
    clinical_lines: int = 0
    clinical_intact: int = 0
    by_category: Counter[str] = field(default_factory=Counter)  # spans per category
    leaked_by_category: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[str, str]] = field(default_factory=list)  # (line id, category): never the text

    @property
    def recall(self) -> float:
        return 1 - self.leaked / self.spans if self.spans else 1.0

    @property
    def retention(self) -> float:
        return self.clinical_intact / self.clinical_lines if self.clinical_lines else 1.0


def header_index(record: dict[str, Any], key: bytes = AUDIT_KEY) -> IdentifierIndex:
    """The identifier index ingest would hold for this record's header (names, IDs, dates), keyed."""
    values = [
        (PhiKind.NAME, record.get("patient_name")),
        (PhiKind.PATIENT_ID, record.get("patient_id")),
        (PhiKind.ACCESSION, record.get("accession_number")),
        (PhiKind.DATE, record.get("study_date")),
    ]
    forms = identifier_forms((kind, value) for kind, value in values if value)
    return IdentifierIndex(key, gate_hashes(key, forms))


def scrub_line(row: dict[str, Any], with_header: bool = True) -> str:
    """Scrub one annotated line as ingest would; `with_header=False` gives the generic rules alone."""
    record = row.get("record") or {}
    known = [v for v in (record.get("patient_id"), record.get("accession_number")) if v]
    shift = dt.timedelta(days=17) if record.get("patient_id") else None
    return scrub_text(row["text"], shift, known, header_index(record) if with_header else None)


def _leaked(text: str, out: str, start: int, end: int, category: str, spans: list[list[Any]]) -> bool:
    value = text[start:end]
    if category == "date":
        return value.casefold() in out.casefold()
    outside = text
    for s, e, _ in spans:  # the line's words that are not identifiers may legitimately remain
        outside = outside[:s] + " " * (e - s) + outside[e:]
    kept, before = Counter(_WORD.findall(out.casefold())), Counter(_WORD.findall(outside.casefold()))
    words = [w for w in _WORD.findall(value.casefold()) if w not in _PARTICLES and (len(w) > 1 or category != "name")]
    if category not in _WORDY:  # "ext" in a phone span, "No." in an ID: only the digits identify
        words = [w for w in words if any(c.isdigit() for c in w)]
    return any(kept[w] > before[w] for w in words)


def measure_spans(path: Path, with_header: bool = True) -> SpanMeasure:
    """Scrub every line of an annotated file and count leaked spans and intact clinical lines."""
    if not path.exists():
        raise SourceError(f"annotated scrubber set not found: {path}")
    return measure_rows((json.loads(line) for line in path.read_text().splitlines()), with_header)


# i2b2 2014 de-identification tags -> this audit's categories (PROFESSION and the like are not identifiers here).
I2B2_CATEGORIES = {
    "PATIENT": "name",
    "DOCTOR": "name",
    "USERNAME": "name",
    "DATE": "date",
    "MEDICALRECORD": "id",
    "IDNUM": "other_id",
    "HEALTHPLAN": "other_id",
    "DEVICE": "other_id",
    "HOSPITAL": "institution",
    "ORGANIZATION": "institution",
    "STREET": "address",
    "CITY": "address",
    "ZIP": "address",
    "PHONE": "phone",
    "FAX": "phone",
    "EMAIL": "email",
    "URL": "url",
}


def i2b2_rows(xml: str, name: str) -> list[dict[str, Any]]:
    """An i2b2-format annotated note as audit rows, one per line of its text (no header record)."""
    from defusedxml import ElementTree

    root = ElementTree.fromstring(xml)
    text = root.findtext("TEXT") or ""
    tags = [
        (int(tag.get("start")), int(tag.get("end")), I2B2_CATEGORIES[tag.get("TYPE")])
        for tag in root.find("TAGS") or []
        if tag.get("TYPE") in I2B2_CATEGORIES
    ]
    rows, offset = [], 0
    for number, line in enumerate(text.split("\n")):
        end = offset + len(line)
        spans = [[s - offset, e - offset, c] for s, e, c in sorted(tags) if offset <= s and e <= end]
        if line.strip():
            rows.append({"id": f"{name}:{number}", "text": line, "spans": spans, "record": {}})
        offset = end + 1
    return rows


def measure_rows(rows: Iterable[dict[str, Any]], with_header: bool = True) -> SpanMeasure:
    """Scrub annotated rows and count leaked spans and intact clinical lines."""
    measure = SpanMeasure()
    for row in rows:
        out = scrub_line(row, with_header)
        measure.lines += 1
        if not row["spans"]:
            measure.clinical_lines += 1
            measure.clinical_intact += out == row["text"]
            if out != row["text"]:
                measure.misses.append((row["id"], "clinical text changed"))
        for start, end, category in row["spans"]:
            measure.spans += 1
            measure.by_category[category] += 1
            if _leaked(row["text"], out, start, end, category, row["spans"]):
                measure.leaked += 1
                measure.leaked_by_category[category] += 1
                measure.misses.append((row["id"], category))
    return measure


@dataclass
class TextPrecision:
    """The scrubber on real report text whose identifiers are already gone (or only of known kinds)."""

    texts: int = 0
    changed: int = 0
    unexplained: list[tuple[int, str]] = field(default_factory=list)  # (text index, what was written): no source

    @property
    def unexplained_fraction(self) -> float:
        return len(self.unexplained) / self.texts if self.texts else 0.0


def changed_regions(before: str, after: str) -> list[tuple[str, str]]:
    """The word runs the scrubber replaced: (original words, what it wrote)."""
    import difflib

    old, new = before.split(), after.split()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [
        (" ".join(old[i1:i2]), " ".join(new[j1:j2])) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
    ]


def measure_precision(texts: Iterable[str], explained: Callable[[str, str], bool]) -> TextPrecision:
    """Scrub texts without a header; every replaced region must be `explained(original, written)`."""
    measure = TextPrecision()
    for number, text in enumerate(texts):
        measure.texts += 1
        out = scrub_text(text)
        if out == text:
            continue
        measure.changed += 1
        for original, written in changed_regions(text, out):
            if not explained(original, written):
                measure.unexplained.append((number, written))
    return measure


def openi_sections(tgz: Path) -> list[str]:
    """Open-i's report sections (findings, impression, indication, comparison), one text each."""
    import tarfile

    from defusedxml import ElementTree

    sections = []
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            if not (member.isfile() and member.name.endswith(".xml")):
                continue
            handle = tar.extractfile(member)
            root = ElementTree.fromstring(handle.read() if handle else b"<x/>")
            sections += [
                node.text
                for node in root.iter("AbstractText")
                if node.text and node.get("Label") in ("FINDINGS", "IMPRESSION", "INDICATION", "COMPARISON")
            ]
    return sections


def openi_explained(original: str, written: str) -> bool:
    """Open-i's identifiers were replaced by XXXX before release: a region holding one is a true identifier."""
    return "XXXX" in original


def padchest_explained(original: str, written: str) -> bool:
    """PadChest keeps only the dates of earlier studies: a region the scrubber turned into [DATE] is one."""
    return set(re.findall(r"\[([A-Z]+)\]", written)) == {"DATE"}
