"""What one ingest run did (shown, logged, and recorded in the ops table)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
