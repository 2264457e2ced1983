"""Read report sources: JSONL, CSV, or Open-i XML files, one record at a time (streaming)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import defusedxml.ElementTree as SafeET

from radpipe.reports.record import BadReport, ReportRecord

REPORT_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".xml")
KEY_COLUMNS = ("accession_number", "study_instance_uid")


def read_reports(name: str, stream: Any) -> Iterator[ReportRecord | BadReport]:
    """Records from one report file, chosen by suffix; broken entries come back as BadReport."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        yield from read_jsonl(io.TextIOWrapper(stream, encoding="utf-8", errors="replace"))
    elif lower.endswith(".csv"):
        yield from read_csv(io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=""))
    elif lower.endswith(".xml"):
        yield from read_openi_xml(stream.read())
    else:
        yield BadReport("unsupported_format", f"report file type {suffix_of(lower)!r} is not JSONL/CSV/XML", 0)


def suffix_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def record_from_mapping(row: dict[str, Any], position: int) -> ReportRecord | BadReport:
    """Validate one row's columns; a report needs text and at least one study key."""

    def text_of(column: str) -> str | None:
        value = row.get(column)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    text = text_of("text")
    if text is None:
        return BadReport("missing_text", "report has no text", position)
    keys = {column: text_of(column) for column in KEY_COLUMNS}
    if not any(keys.values()):
        return BadReport("missing_key", "report has neither accession_number nor study_instance_uid", position)
    return ReportRecord(
        text=text,
        accession_number=keys["accession_number"],
        study_instance_uid=keys["study_instance_uid"],
        patient_id=text_of("patient_id"),
        report_date=text_of("report_date"),
        rationale=text_of("rationale"),
        position=position,
    )


def read_jsonl(lines: io.TextIOBase) -> Iterator[ReportRecord | BadReport]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadReport("parse_error", f"line {number}: invalid JSON ({exc.msg})", number)
            continue
        if not isinstance(row, dict):
            yield BadReport("parse_error", f"line {number}: a JSON object was expected", number)
            continue
        yield record_from_mapping(row, number)


def read_csv(lines: io.TextIOBase) -> Iterator[ReportRecord | BadReport]:
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        yield BadReport("parse_error", "CSV header has no 'text' column", 0)
        return
    try:
        for row in reader:
            number = reader.line_num
            if None in row or any(value is None for value in row.values()):
                yield BadReport("parse_error", f"line {number}: wrong number of fields", number)
                continue
            yield record_from_mapping(row, number)
    except csv.Error as exc:
        yield BadReport("parse_error", f"line {reader.line_num}: {exc}", reader.line_num)


def read_openi_xml(data: bytes) -> Iterator[ReportRecord | BadReport]:
    """Open-i (Indiana University chest X-ray) XML: one report per <eCitation>, sections as AbstractText."""
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # defusedxml raises ParseError or its own security errors
        yield BadReport("parse_error", f"invalid XML ({type(exc).__name__})", 0)
        return
    citations = [root] if root.tag == "eCitation" else list(root.iter("eCitation"))
    for number, citation in enumerate(citations, start=1):
        uid_element = citation.find("uId")
        accession = uid_element.get("id") if uid_element is not None else None
        sections = []
        for abstract in citation.iter("AbstractText"):
            label = (abstract.get("Label") or "").strip().upper()
            body = "".join(abstract.itertext()).strip()
            if label:
                sections.append(f"{label}: {body}")
        row = {
            "accession_number": accession,
            "text": "\n".join(sections) if any(s.split(":", 1)[1].strip() for s in sections) else None,
        }
        yield record_from_mapping(row, number)
