"""The single de-identification step every header and report passes before anything is written.

This is the seam the ingest engine calls; nothing writes a table from a Dataset or a report record
that has not been through `Deidentifier`. The header rules here are a first, fail-closed subset
(identifiers pseudonymised, direct identifiers and private tags removed, dates shifted); the full
PS3.15 Annex E profile plugs in behind the same two methods.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from pydicom.datadict import dictionary_VR
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
        # Without a patient there is no secret per-patient shift: dates are removed, not shifted by one
        # shift shared by every anonymous record (one known date would undo them all).
        shift = dt.timedelta(days=self.pseudonymizer.date_shift_days(source_patient)) if source_patient else None
        for keyword in REMOVED_KEYWORDS:
            if keyword in ds:
                delattr(ds, keyword)
        self._clean(ds, shift)
        if source_patient:
            ds.PatientID = self.pseudonymizer.pseudonym(IdentifierKind.PATIENT_ID, source_patient)
        if ds.get("AccessionNumber"):
            ds.AccessionNumber = self.pseudonymizer.pseudonym(IdentifierKind.ACCESSION_NUMBER, str(ds.AccessionNumber))
        ds.PatientIdentityRemoved = "YES"
        return ds

    def _clean(self, ds: Dataset, shift: dt.timedelta | None) -> None:
        """One pass over the tags, recursing into sequences: private tags out, UIDs keyed, dates shifted.

        The VR comes from the data dictionary, so elements that need nothing are never decoded;
        tags the dictionary does not know are decoded and judged by their own VR (fail closed).
        """
        for tag in list(ds.keys()):
            if tag.is_private:
                del ds[tag]  # private tags carry anything, names included; none is on a safe list yet
                continue
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                vr = ds[tag].VR
            if vr == "SQ":
                for item in ds[tag].value or ():
                    self._clean(item, shift)
            elif vr in ("UI", "DA", "DT"):
                self._element(ds[tag], shift)

    def _element(self, elem: DataElement, shift: dt.timedelta | None) -> None:
        if not elem.value or elem.keyword == "TransferSyntaxUID":
            return
        if elem.VR == "UI":
            elem.value = self._uid(str(elem.value)) if elem.VM == 1 else [self._uid(str(v)) for v in elem.value]
        elif elem.VR == "DA":
            values = [elem.value] if elem.VM == 1 else list(elem.value)
            shifted = [(shift_date(str(v), shift) or "") if shift is not None else "" for v in values]
            elem.value = shifted[0] if elem.VM == 1 else shifted
        elif elem.VR == "DT":
            elem.value = ""  # date-times carry times of day too; issue 3 shifts them properly

    def _uid(self, value: str) -> str:
        # Registered standard UIDs (SOP classes, transfer syntaxes, coding schemes) identify no one.
        return value if value in UID_dictionary else self.pseudonymizer.uid(value)

    def report(self, record: ReportRecord) -> ReportRecord:
        """De-identify a report record: keys pseudonymised, report date shifted per patient."""
        p = self.pseudonymizer
        shift = dt.timedelta(days=p.date_shift_days(record.patient_id)) if record.patient_id else None
        return replace(
            record,
            accession_number=(
                p.pseudonym(IdentifierKind.ACCESSION_NUMBER, record.accession_number)
                if record.accession_number
                else None
            ),
            study_instance_uid=p.uid(record.study_instance_uid) if record.study_instance_uid else None,
            patient_id=p.pseudonym(IdentifierKind.PATIENT_ID, record.patient_id) if record.patient_id else None,
            report_date=shift_date(record.report_date, shift) if record.report_date and shift else None,
        )


def shift_date(value: str, shift: dt.timedelta) -> str | None:
    """Shift a DICOM (YYYYMMDD) or ISO (YYYY-MM-DD) date; None when it does not parse."""
    digits = value.strip().replace("-", "")[:8]
    try:
        return (dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) + shift).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None
