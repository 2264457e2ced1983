"""Read report sources: JSONL, CSV, or Open-i XML files, one record at a time (streaming)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import defusedxml.ElementTree as SafeET

from radpipe.dataset.reasons import Reason
from radpipe.reports.record import BadReport, ReportRecord

REPORT_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".xml")
KEY_COLUMNS = ("accession_number", "study_instance_uid")


# Report exports from spreadsheets and older systems: the encodings we recognise, in order.
SNIFF_BYTES = 64 * 1024


def sniff_encoding(head: bytes) -> str:
    """utf-8-sig (BOM or none), utf-16 (BOM), else cp1252 when the start is not valid UTF-8."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            return "cp1252"
    return "utf-8-sig"


def _text_stream(stream: Any, newline: str | None = None) -> io.TextIOWrapper:
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream, SNIFF_BYTES)
    encoding = sniff_encoding(buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES])
    return io.TextIOWrapper(buffered, encoding=encoding, errors="replace", newline=newline)


def read_reports(name: str, stream: Any) -> Iterator[ReportRecord | BadReport]:
    """Records from one report file, chosen by suffix; broken entries come back as BadReport."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        yield from read_jsonl(_text_stream(stream))
    elif lower.endswith(".csv"):
        yield from read_csv(_text_stream(stream, newline=""))
    elif lower.endswith(".xml"):
        yield from read_openi_xml(stream.read())
    else:
        # The name itself is never echoed: file names in archives can hold patient names.
        yield BadReport(Reason.UNSUPPORTED_FORMAT, "report file is not JSONL, CSV or Open-i XML", 0)


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
        return BadReport(Reason.MISSING_TEXT, "report has no text", position)
    keys = {column: text_of(column) for column in KEY_COLUMNS}
    if not any(keys.values()):
        return BadReport(Reason.MISSING_KEY, "report has neither accession_number nor study_instance_uid", position)
    return ReportRecord(
        text=text,
        accession_number=keys["accession_number"],
        study_instance_uid=keys["study_instance_uid"],
        patient_id=text_of("patient_id"),
        report_date=text_of("report_date"),
        rationale=text_of("rationale"),
        position=position,
    )


def read_jsonl_part(data: bytes, encoding: str, first_line: int) -> Iterator[ReportRecord | BadReport]:
    """Records of a byte range of a JSONL file that starts at a line start (line numbers as in the whole file)."""
    yield from read_jsonl(io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace"), first_line)


def read_jsonl(lines: io.TextIOBase, first_line: int = 1) -> Iterator[ReportRecord | BadReport]:
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadReport(Reason.PARSE_ERROR, f"line {number}: invalid JSON ({exc.msg})", number)
            continue
        except (ValueError, RecursionError) as exc:  # absurd numbers or nesting depth
            yield BadReport(Reason.PARSE_ERROR, f"line {number}: unreadable JSON ({type(exc).__name__})", number)
            continue
        if not isinstance(row, dict):
            yield BadReport(Reason.PARSE_ERROR, f"line {number}: a JSON object was expected", number)
            continue
        yield record_from_mapping(row, number)


MAX_CSV_FIELD = 16 * 1024 * 1024  # one report is at most a few pages; the default 128 KB is too tight
MAX_CSV_ERRORS_IN_A_ROW = 100


def read_csv(lines: io.TextIOBase) -> Iterator[ReportRecord | BadReport]:
    # The csv module's limit is process-wide: raised for this file, given back when it is done.
    previous = csv.field_size_limit(MAX_CSV_FIELD)
    try:
        yield from _read_csv_rows(lines)
    finally:
        csv.field_size_limit(previous)


def _read_csv_rows(lines: io.TextIOBase) -> Iterator[ReportRecord | BadReport]:
    reader = csv.DictReader(lines)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        yield BadReport(Reason.PARSE_ERROR, f"unreadable CSV header ({exc})", 0)
        return
    if fieldnames is None or "text" not in fieldnames:
        yield BadReport(Reason.PARSE_ERROR, "CSV header has no 'text' column", 0)
        return
    errors_in_a_row = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader moves past the bad line; keep going so later rows are not lost.
            yield BadReport(Reason.PARSE_ERROR, f"line {reader.line_num}: {exc}", reader.line_num)
            errors_in_a_row += 1
            if errors_in_a_row >= MAX_CSV_ERRORS_IN_A_ROW:
                yield BadReport(
                    Reason.PARSE_ERROR,
                    f"line {reader.line_num}: too many CSV errors, rest skipped",
                    reader.line_num + 1,
                )
                return
            continue
        errors_in_a_row = 0
        number = reader.line_num
        if None in row or any(value is None for value in row.values()):
            yield BadReport(Reason.PARSE_ERROR, f"line {number}: wrong number of fields", number)
            continue
        yield record_from_mapping(row, number)


def read_openi_xml(data: bytes) -> Iterator[ReportRecord | BadReport]:
    """Open-i (Indiana University chest X-ray) XML: one report per <eCitation>, sections as AbstractText."""
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # defusedxml raises ParseError or its own security errors
        yield BadReport(Reason.PARSE_ERROR, f"invalid XML ({type(exc).__name__})", 0)
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
