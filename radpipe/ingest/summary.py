"""What one ingest run did (shown, logged, and recorded in the ops table)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from radpipe.ops.facts import NONE, PASSED, RunFacts, summary_record


@dataclass
class IngestSummary:
    """What one ingest run did; `files_in == instances_added + quarantined_files` must hold."""

    files_seen: int = 0
    files_skipped: int = 0  # already in the ledger, unchanged
    files_in: int = 0
    instances_added: int = 0
    instances_without_patient_id: int = 0  # no PatientID in the source: each such study is its own patient
    images_without_body_part: int = 0  # accepted by the profile's choice (Acceptance.accept_unknown_body_part)
    withheld: Counter[str] = field(default_factory=Counter)  # records the PHI gate withheld, by reason
    # Reports in a language no labeller rules exist for (und: too short or mixed to tell): stored, labels null.
    reports_unlabelled_language: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)  # DICOM files by reason
    report_files: int = 0  # report files seen in the source
    report_files_in: int = 0  # new or changed since the ledger: read this run
    reports_added: int = 0
    reports_unchanged: int = 0  # re-read from a report file that changed; already in reports/
    reports_quarantined: Counter[str] = field(default_factory=Counter)
    reports_linked: int = 0
    reports_orphaned: int = 0
    studies: int = 0
    volumes_assembled: int = 0  # CT/MR series (re)assembled into volumes/ by this run
    volumes_with_issues: Counter[str] = field(default_factory=Counter)  # series held back, by geometry issue
    input_bytes: int = 0
    seconds: float = 0.0
    recovered_batches: int = 0
    dropped_batches: int = 0
    # Committed batches whose PHI-gate identifiers were missing (a lost or old store) and were rebuilt from the
    # sources, and those that could not be (their files are gone): the gate refuses while any remain.
    identifier_batches_repaired: int = 0
    identifier_batches_unrepaired: int = 0
    dataset_id: str = ""

    @property
    def quarantined_files(self) -> int:
        return sum(self.quarantined.values())

    @property
    def balanced(self) -> bool:
        return self.files_in == self.instances_added + self.quarantined_files

    def facts(self, gated: bool = True) -> RunFacts:
        """What the ops row keeps; `gated`: the run went through the PHI gate (an ingest flow completes only so)."""
        reasons = {k: v for k, v in self.quarantined.items() if v}
        reasons |= {f"report:{k}": v for k, v in self.reports_quarantined.items() if v}
        reasons |= {f"withheld:{k}": v for k, v in self.withheld.items() if v}  # by the PHI gate
        unlabelled = sum(self.reports_unlabelled_language.values())
        return RunFacts(
            files_seen=self.files_seen,
            files_ingested=self.instances_added,
            files_quarantined=self.quarantined_files,
            quarantine_reasons=reasons,
            phi_gate=PASSED if gated else NONE,
            # Counted only when there are some: reports whose language the labeller has no rules for.
            metrics={"reports_unlabelled_language": float(unlabelled)} if unlabelled else {},
        )

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts(), quarantined_files=self.quarantined_files, balanced=self.balanced)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> IngestSummary:
        """The summary a record was made of (a flow's tasks pass records, plain JSON, between them)."""
        values = {f.name: record[f.name] for f in fields(cls) if f.name in record}
        for name, value in values.items():
            if isinstance(value, Mapping):
                values[name] = Counter(value)
        return cls(**values)

    def markdown(self) -> str:
        """The run as a Markdown artifact: counts, then files by quarantine reason."""
        rows = "\n".join(f"| {reason} | {count} |" for reason, count in sorted(self.quarantined.items()))
        return (
            f"# Ingest\n\n{self.files_in} new files: {self.instances_added} instances, "
            f"{self.quarantined_files} quarantined; {self.reports_added} reports added, "
            f"{self.reports_linked} linked, {self.reports_orphaned} waiting for images; "
            f"{self.seconds:.1f} s.\n\n| quarantine reason | files |\n|---|---|\n{rows}\n"
        )
