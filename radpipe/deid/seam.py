"""The single de-identification step every header and report passes before anything is written.

This is the seam the ingest engine calls; nothing writes a table from a Dataset or a report record
that has not been through `Deidentifier`. The header rules here are a first, fail-closed subset
(identifiers pseudonymised, direct identifiers and private tags removed, dates shifted); the full
PS3.15 Annex E profile plugs in behind the same two methods.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from radpipe.deid.pseudonym import IdentifierKind, Pseudonymizer
from radpipe.reports.record import ReportRecord

# Attributes removed outright: direct identifiers of people and places.
REMOVED_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "OtherPatientIDs",
    "OtherPatientNames",
    "OtherPatientIDsSequence",
    "PatientMotherBirthName",
    "MilitaryRank",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "StationName",
    "DeviceSerialNumber",
    "StudyID",
    "PatientComments",
    "ImageComments",
    "AdditionalPatientHistory",
)


@dataclass(frozen=True)
class Deidentifier:
    """Applies the de-identification policy with one key; picklable, so Dask workers get a copy."""

    pseudonymizer: Pseudonymizer

    def dataset(self, ds: Dataset) -> Dataset:
        """De-identify a Dataset in place and return it (identifiers keyed, dates shifted)."""
        source_patient = str(ds.get("PatientID", "") or "")
        shift = dt.timedelta(days=self.pseudonymizer.date_shift_days(source_patient))
        for keyword in REMOVED_KEYWORDS:
            if keyword in ds:
                delattr(ds, keyword)
        ds.walk(lambda d, elem: self._element(d, elem, shift))  # one pass: private tags, UIDs, dates
        if source_patient:
            ds.PatientID = self.pseudonymizer.pseudonym(IdentifierKind.PATIENT_ID, source_patient)
        if ds.get("AccessionNumber"):
            ds.AccessionNumber = self.pseudonymizer.pseudonym(
                IdentifierKind.ACCESSION_NUMBER, str(ds.AccessionNumber)
            )
        ds.PatientIdentityRemoved = "YES"
        return ds

    def _element(self, ds: Dataset, elem: DataElement, shift: dt.timedelta) -> None:
        if elem.tag.is_private:
            del ds[elem.tag]  # private tags carry anything, names included; none is on a safe list yet
        elif elem.VR == "UI" and elem.value and elem.keyword not in ("TransferSyntaxUID",):
            if elem.VM == 1:
                elem.value = self._uid(str(elem.value))
            else:
                elem.value = [self._uid(str(v)) for v in elem.value]
        elif elem.VR == "DA" and elem.value and elem.VM == 1:
            elem.value = shift_date(str(elem.value), shift) or ""
        elif elem.VR == "DT" and elem.value and elem.VM == 1:
            elem.value = ""

    def _uid(self, value: str) -> str:
        # Registered standard UIDs (SOP classes, transfer syntaxes, coding schemes) identify no one.
        return value if value in UID_dictionary else self.pseudonymizer.uid(value)

    def report(self, record: ReportRecord) -> ReportRecord:
        """De-identify a report record: keys pseudonymised, report date shifted per patient."""
        p = self.pseudonymizer
        shift = dt.timedelta(days=p.date_shift_days(record.patient_id or ""))
        return replace(
            record,
            accession_number=(
                p.pseudonym(IdentifierKind.ACCESSION_NUMBER, record.accession_number)
                if record.accession_number
                else None
            ),
            study_instance_uid=p.uid(record.study_instance_uid) if record.study_instance_uid else None,
            patient_id=p.pseudonym(IdentifierKind.PATIENT_ID, record.patient_id)
            if record.patient_id
            else None,
            report_date=shift_date(record.report_date, shift) if record.report_date else None,
        )


def shift_date(value: str, shift: dt.timedelta) -> str | None:
    """Shift a DICOM (YYYYMMDD) or ISO (YYYY-MM-DD) date; None when it does not parse."""
    digits = value.strip().replace("-", "")[:8]
    try:
        day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
    return (day + shift).strftime("%Y%m%d")
