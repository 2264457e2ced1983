"""Measure the report scrubber on a synthetic --phi archive: recall on planted identifiers, and how
much clinical text survives untouched (precision on clinical phrases)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.deid.seam import Deidentifier
from radpipe.errors import SourceError
from radpipe.reports.labeler import label_report
from radpipe.reports.record import ReportRecord


@dataclass(frozen=True)
class ScrubMeasure:
    planted: int  # identifier occurrences planted in report text
    leaked: int  # of those, still present after scrubbing
    clinical_sentences: int  # sentences with no planted identifier
    clinical_intact: int  # of those, unchanged by the scrubber
    reports: int
    labels_unchanged: int  # reports whose labels are the same before and after scrubbing

    @property
    def recall(self) -> float:
        return 1 - self.leaked / self.planted if self.planted else 1.0

    @property
    def clinical_precision(self) -> float:
        return self.clinical_intact / self.clinical_sentences if self.clinical_sentences else 1.0


def _sentences(text: str) -> list[str]:
    # Not after titles and "St." ("St. Mary's General Hospital" is one sentence).
    parts = re.split(r"(?<!\bSt\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<=[.!?])\s+|\n", text)
    return [s.strip() for s in parts if s.strip()]


def _occurrences(value: str, text: str) -> int:
    """Whole occurrences: an age 93 replaced by "90+" is not a leak of "90"."""
    return len(re.findall(r"(?<![\w])" + re.escape(value) + r"(?![\w+])", text))


def measure_scrubbing(archive: Path, key: bytes = b"radpipe-audit-key-not-secret") -> ScrubMeasure:
    """Scrub every report of a synthetic archive and compare with what synth planted."""
    truth_path, reports_path = archive / "truth.jsonl", archive / "reports" / "reports.jsonl"
    if not truth_path.exists() or not reports_path.exists():
        raise SourceError(f"{archive} is not a radpipe synth archive (truth.jsonl and reports/ expected)")
    truth = [json.loads(line) for line in truth_path.open()]
    planted_by_accession = {t["accession_number"]: t.get("report_phi", []) for t in truth}
    planted_by_study = {t["study_instance_uid"]: t.get("report_phi", []) for t in truth}
    deid = Deidentifier(Pseudonymizer(key))
    planted = leaked = clinical = intact = reports = same_labels = 0
    for line in reports_path.open():
        row = json.loads(line)
        values = planted_by_accession.get(row.get("accession_number")) or planted_by_study.get(
            row.get("study_instance_uid"), []
        )
        record = ReportRecord(
            text=row["text"],
            accession_number=row.get("accession_number"),
            study_instance_uid=row.get("study_instance_uid"),
            patient_id=row.get("patient_id"),
        )
        scrubbed = deid.report(record).text
        reports += 1
        for value in values:
            count = _occurrences(value, row["text"])
            planted += count
            leaked += min(count, _occurrences(value, scrubbed))
        after = set(_sentences(scrubbed))
        for sentence in _sentences(row["text"]):
            if not any(value in sentence for value in values):
                clinical += 1
                intact += sentence in after
        same_labels += label_report(row["text"]) == label_report(scrubbed)
    return ScrubMeasure(planted, leaked, clinical, intact, reports, same_labels)
