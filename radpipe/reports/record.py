"""One report as read from a source, before and after de-identification."""

from __future__ import annotations

from dataclasses import dataclass

from radpipe.dataset.reasons import Reason


@dataclass(frozen=True)
class ReportRecord:
    """A report with the keys that link it to a study (accession number and/or study UID)."""

    text: str
    accession_number: str | None = None
    study_instance_uid: str | None = None
    patient_id: str | None = None
    report_date: str | None = None
    rationale: str | None = None
    # Where in the source it came from (line or element number); for quarantine detail, never shown with a path.
    position: int = 0


@dataclass(frozen=True)
class BadReport:
    """A report line or element that could not be read; lands in quarantine with this reason."""

    reason: Reason
    detail: str
    position: int
