"""One report record in, one reports/ row or one quarantine record out (pure)."""

from __future__ import annotations

import hashlib
from typing import Any

from radpipe.deid import Deidentifier
from radpipe.deid.identifiers import IdentifierIndex
from radpipe.deid.pseudonym import IdentifierKind
from radpipe.ingest.quarantine import Quarantined, Stage
from radpipe.reports.labeler import label_report
from radpipe.reports.language import detect_language
from radpipe.reports.record import BadReport, ReportRecord
from radpipe.reports.sections import split_sections


def report_identity(record: ReportRecord) -> str:
    """What makes two report records the same report: its keys and its exact text."""
    text_hash = hashlib.sha256(record.text.encode()).hexdigest()
    return f"{record.accession_number or ''}|{record.study_instance_uid or ''}|{text_hash}"


def process_report(
    item: ReportRecord | BadReport, source_key: str, deid: Deidentifier, index: IdentifierIndex | None = None
) -> dict[str, Any] | Quarantined:
    """De-identify, split and label one record; a BadReport becomes its quarantine record."""
    if isinstance(item, BadReport):
        return Quarantined(source_key, Stage.REPORT, item.reason, item.detail, item.position)
    report_id = deid.pseudonymizer.pseudonym(IdentifierKind.REPORT_ID, report_identity(item))
    clean = deid.report(item, index)  # the de-identification seam: keys, dates, text
    sections = split_sections(clean.text)
    language = detect_language(clean.text)
    # Label what the radiologist concluded and saw; the indication is the question, not the answer.
    labelled = " ".join(
        s for s in (sections.get("findings"), sections.get("impression"), sections.get("preamble")) if s
    )
    return {
        "report_id": report_id,
        "study_instance_uid": clean.study_instance_uid,
        "accession_number": clean.accession_number,
        "patient_id": clean.patient_id,
        "report_date": clean.report_date,
        "text": clean.text,
        "indication": sections.get("indication"),
        "findings": sections.get("findings"),
        "impression": sections.get("impression"),
        "rationale": clean.rationale,
        "labels": label_report(labelled, language),  # null for a language radpipe has no rules for
        "language": language,
        "source_key": source_key,
    }
