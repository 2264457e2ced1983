"""Split report text into its sections (FINDINGS, IMPRESSION, INDICATION, ...)."""

from __future__ import annotations

import re

# Heading spellings mapped to the section they open; extend here, not in code.
SECTION_HEADINGS: dict[str, str] = {
    "findings": "findings",
    "finding": "findings",
    "impression": "impression",
    "impressions": "impression",
    "conclusion": "impression",
    "indication": "indication",
    "indications": "indication",
    "clinical history": "indication",
    "history": "indication",
    "reason for exam": "indication",
    "comparison": "comparison",
    "technique": "technique",
    "examination": "examination",
    "exam": "examination",
}

_NAMES = "|".join(sorted(map(re.escape, SECTION_HEADINGS), key=len, reverse=True))
# Any case at the start of a line or sentence; in the middle of a line only when written in capitals
# ("EXAMINATION: CHEST PA INDICATION: cough"), so "the history: ..." inside a sentence is left alone.
_HEADING = re.compile(r"(?:(?i:(?:^|(?<=[\n.;]))\s*(" + _NAMES + r"))|(?<=\s)(" + _NAMES.upper() + r"))\s*:")


def split_sections(text: str) -> dict[str, str]:
    """Map section name to its body text; text before the first heading goes to "preamble".

    An empty section (a heading with nothing after it) maps to "".
    """
    sections: dict[str, str] = {}
    matches = list(_HEADING.finditer(text))
    head = text[: matches[0].start()].strip() if matches else text.strip()
    if head:
        sections["preamble"] = head
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name = SECTION_HEADINGS[(match.group(1) or match.group(2)).lower()]
        body = " ".join(text[match.end() : end].split())
        sections[name] = (sections.get(name, "") + " " + body).strip() if name in sections else body
    return sections


def report_text(findings: str | None, impression: str | None, text: str | None) -> str:
    """Findings and impression are what an image shows; the indication says why it was taken, so it is left out."""
    parts = [p.strip() for p in (findings, impression) if p and p.strip()]
    return " ".join(parts) if parts else (text or "").strip()
