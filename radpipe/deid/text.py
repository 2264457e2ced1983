"""Scrub identifiers from report text, keeping the clinical content (rules in text_rules.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from radpipe.deid.text_rules import RULES, Rule

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


def scrub_text(text: str, shift: dt.timedelta | None = None, known: Iterable[str] = ()) -> str:
    """Text with identifiers replaced by [KIND] placeholders, dates shifted, ages over 89 as 90+.

    `known` are identifier values known to belong to this record (its MRN, accession number):
    replaced wherever they appear, whatever their form.
    """
    for value in sorted({v for v in known if v and len(v) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), "[ID]", text, flags=re.IGNORECASE)
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
    return text
