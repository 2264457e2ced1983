"""The single de-identification step every header and report passes before anything is written.

This is the seam the ingest engine calls; nothing writes a table from a Dataset or a report record
that has not been through `Deidentifier`: headers get the PS3.15 Annex E profile (radpipe/deid/header.py),
report text the scrubber (radpipe/deid/text.py), and both the same keyed pseudonyms and date shifts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from pydicom.dataset import Dataset

from radpipe.deid.header import HeaderPolicy, deidentify_header, shift_date
from radpipe.deid.identifiers import IdentifierIndex
from radpipe.deid.pseudonym import IdentifierKind, Pseudonymizer
from radpipe.deid.text import scrub_text
from radpipe.reports.record import ReportRecord

__all__ = ["Deidentifier", "shift_date"]

# Scrubbed descriptors kept per process: a CT or MR series repeats its descriptions in every one of its files.
_MEMO_ENTRIES = 4096


class _DescriptorMemo:
    """Header descriptors already scrubbed, by (text, date shift, the header's own identifiers).

    `scrub_text` is a function of exactly these, so a hit returns what scrubbing again would. The keys hold
    source text: the memo stays in its process (a pickled copy starts empty) and is bounded.
    """

    def __init__(self) -> None:
        self._scrubbed: dict[tuple[str, dt.timedelta | None, tuple[str, ...]], str] = {}
        self.hits = 0

    def __reduce__(self) -> tuple[type[_DescriptorMemo], tuple[()]]:
        return (_DescriptorMemo, ())

    def scrub(self, text: str, shift: dt.timedelta | None, known: list[str]) -> str:
        key = (text, shift, tuple(known))
        scrubbed = self._scrubbed.get(key)
        if scrubbed is None:
            if len(self._scrubbed) >= _MEMO_ENTRIES:
                self._scrubbed.clear()
            scrubbed = self._scrubbed[key] = scrub_text(text, shift, known)
        else:
            self.hits += 1
        return scrubbed

    def __len__(self) -> int:
        return len(self._scrubbed)


@dataclass(frozen=True)
class Deidentifier:
    """Applies the de-identification policy with one key; picklable, so Dask workers get a copy."""

    pseudonymizer: Pseudonymizer
    header_policy: HeaderPolicy = field(default_factory=HeaderPolicy)
    # Modalities the operator has checked for burned-in text (RADPIPE_BURNED_IN_ALLOW); see burned_in.py.
    burned_in_allowed: frozenset[str] = frozenset()
    _descriptors: _DescriptorMemo = field(default_factory=_DescriptorMemo, init=False, compare=False, repr=False)

    def shift_for(self, source_patient_id: str | None) -> dt.timedelta | None:
        """The patient's secret date shift; None without a patient (dates are then removed, not shifted)."""
        if not source_patient_id or not source_patient_id.strip():
            return None
        return dt.timedelta(days=self.pseudonymizer.date_shift_days(source_patient_id.strip()))

    def dataset(self, ds: Dataset) -> Dataset:
        """De-identify a Dataset in place by the Annex E policy and return it."""
        shift = self.shift_for(str(ds.get("PatientID", "") or ""))
        return deidentify_header(
            ds, self.pseudonymizer, self.header_policy, lambda text, known: self._descriptors.scrub(text, shift, known)
        )

    def report(self, record: ReportRecord, index: IdentifierIndex | None = None) -> ReportRecord:
        """De-identify a report: keys pseudonymised, text scrubbed, dates shifted per patient.

        `index` holds the identifier forms of the headers ingested so far (keyed): names, IDs and places a
        header knows are removed from the text in whatever order, case or spacing the report writes them.
        """
        p = self.pseudonymizer
        shift = self.shift_for(record.patient_id)
        known = [v for v in (record.patient_id, record.accession_number, record.study_instance_uid) if v]
        return replace(
            record,
            text=scrub_text(record.text, shift, known, index),
            rationale=scrub_text(record.rationale, shift, known, index) if record.rationale else None,
            accession_number=(
                p.pseudonym(IdentifierKind.ACCESSION_NUMBER, record.accession_number)
                if record.accession_number
                else None
            ),
            study_instance_uid=p.uid(record.study_instance_uid) if record.study_instance_uid else None,
            patient_id=p.pseudonym(IdentifierKind.PATIENT_ID, record.patient_id) if record.patient_id else None,
            report_date=shift_date(record.report_date, shift) if record.report_date and shift else None,
        )
