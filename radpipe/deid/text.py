"""Scrub identifiers from report text, keeping the clinical content (rules in text_rules.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from radpipe.deid.identifiers import IdentifierIndex, PhiKind
from radpipe.deid.text_rules import EPONYMS, RULES, Rule

_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%Y%m%d", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y")


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    regex: re.Pattern[str]


@lru_cache(maxsize=1)
def _compiled() -> tuple[_Compiled, ...]:
    return tuple(_Compiled(rule, re.compile(rule.pattern)) for rule in RULES)


def _parse_date(text: str) -> tuple[dt.date, str] | None:
    cleaned = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text).replace(",", " ").replace(".", " ")
    cleaned = " ".join(cleaned.split())
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).date(), fmt
        except ValueError:
            continue
    return None


def _shifted(text: str, shift: dt.timedelta | None) -> str:
    """A full date moved by the patient's secret shift, in its own format; otherwise a placeholder."""
    parsed = _parse_date(text)
    if parsed is None or shift is None:
        return "[DATE]"
    day, fmt = parsed
    if "%y" in fmt and day > dt.date.today():  # two-digit years are never in the future: 3/4/68 is 1968
        day = day.replace(year=day.year - 100)
    try:
        out = fmt if "%y" not in fmt else "%m/%d/%Y"
        if out.startswith(("%B", "%b")):
            out = out.replace(" %Y", ", %Y")
        return (day + shift).strftime(out)
    except OverflowError:
        return "[DATE]"


def scrub_text(
    text: str, shift: dt.timedelta | None = None, known: Iterable[str] = (), index: IdentifierIndex | None = None
) -> str:
    """Text with identifiers replaced by [KIND] placeholders, dates shifted, ages over 89 as 90+.

    `known` are identifier values known to belong to this record (its MRN, accession number):
    replaced wherever they appear, whatever their form. `index` holds (keyed) the identifier forms the
    headers ingested so far gave (names in any order and case, IDs with or without separators): every
    form it knows is replaced too, before the generic rules look for what no header knows.
    """
    for value in sorted({v for v in known if v and len(v) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), "[ID]", text, flags=re.IGNORECASE)
    masked: list[str] = []

    def mask(match: re.Match[str]) -> str:
        masked.append(match.group(0))
        return f"\x00{len(masked) - 1}\x00"

    text = _eponyms().sub(mask, text)  # "Sister Mary Joseph nodule" is anatomy, not a person
    if index is not None:
        text = _replace_known_forms(text, index)
    for compiled in _compiled():
        kind = compiled.rule.kind

        def replace(match: re.Match[str], kind: str = kind) -> str:
            keep = match.groupdict().get("keep") or ""
            body = match.group(0)[len(keep) :]
            if kind == "DATE":
                return keep + _shifted(body, shift)
            if kind == "AGE":
                return keep + "90+"
            if kind in ("DOB", "DATEX"):
                return keep + "[DATE]"
            return keep + f"[{kind}]"

        text = compiled.regex.sub(replace, text)
    return re.sub("\x00(\\d+)\x00", lambda m: masked[int(m.group(1))], text)


@lru_cache(maxsize=1)
def _eponyms() -> re.Pattern[str]:
    return re.compile(r"\b(?:" + EPONYMS + r")(?!\w)", re.IGNORECASE)


# The placeholder for a form the index knows, by the kind of header value it came from. Dates are left to the
# date rules, which shift them by the patient's secret offset instead of removing them.
_PLACEHOLDERS = {
    PhiKind.NAME.value: "[NAME]",
    PhiKind.PATIENT_ID.value: "[MRN]",
    PhiKind.ACCESSION.value: "[ACCESSION]",
    PhiKind.STUDY_ID.value: "[ID]",
    PhiKind.UID.value: "[UID]",
    PhiKind.CONTACT.value: "[ADDRESS]",
    PhiKind.INSTITUTION.value: "[INSTITUTION]",
    PhiKind.PRIVATE.value: "[ID]",
}


def _replace_known_forms(text: str, index: IdentifierIndex) -> str:
    out, last = [], 0
    for start, end, kind in index.spans(text):
        placeholder = _PLACEHOLDERS.get(kind)
        if placeholder is None or start < last:
            continue
        if kind == PhiKind.NAME.value and " " not in text[start:end] and not text[start].isupper():
            continue  # one lower-case word ("brown fat", "white matter") is not the patient Brown or White
        out.append(text[last:start] + placeholder)
        last = end
    return "".join(out) + text[last:]
