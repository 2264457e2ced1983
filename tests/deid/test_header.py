"""Annex E applied to headers: each action, nested sequences, private tags, overlays, dates, method codes."""

import datetime as dt

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radpipe.deid import Deidentifier, Pseudonymizer
from radpipe.deid.annex_e import Action, basic_profile
from radpipe.deid.header import HeaderPolicy

KEY = b"header-test-key-0123456789"


def _deid(**policy: object) -> Deidentifier:
    return Deidentifier(Pseudonymizer(KEY), header_policy=HeaderPolicy(**policy))  # type: ignore[arg-type]


def _source() -> Dataset:
    ds = Dataset()
    ds.PatientID = "MRN1234567"
    ds.PatientName = "Doe^Jane"
    ds.PatientBirthDate = "19500102"
    ds.AccessionNumber = "A123456789"
    ds.StudyInstanceUID = "1.2.3.4.5.6"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.StudyDate = "20200115"
    ds.AcquisitionDateTime = "20200115101500.000000"
    ds.StudyTime = "101500"
    ds.InstitutionName = "St. Mary's General Hospital"
    ds.StationName = "XR-ROOM-3"
    ds.ClinicalTrialSponsorName = "Hospital Research Office"
    ds.StudyDescription = "CHEST PA LAT for Jane Doe 01/15/2020"
    ds.PatientSex = "F"
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.Manufacturer = "ACME"
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data
    ds.add_new(0x50000010, "US", 3)  # a retired curve attribute
    block = ds.private_block(0x0011, "ACME PACS", create=True)
    block.add_new(0x01, "LO", "Jane Doe")
    block.add_new(0x02, "DS", "1.5")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.7"
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    request = Dataset()
    request.RequestedProcedureID = "RP-99"
    request.ScheduledPerformingPhysicianName = "House^Gregory"
    nested = Dataset()
    nested.AccessionNumber = "A123456789"
    nested.PatientName = "Doe^Jane"  # not where Annex E expects it: the PN guard removes it anyway
    nested.StudyInstanceUID = "1.2.3.4.5.6"
    request.ReferencedStudySequence = Sequence([nested])
    ds.RequestAttributesSequence = Sequence([request])
    ds.ProcedureCodeSequence = Sequence([item])
    return ds


def test_the_table_covers_the_standard() -> None:
    profile = basic_profile()
    assert len(profile.exact) > 600
    counts = {action: sum(1 for a in profile.exact.values() if a is action) for action in Action}
    assert counts[Action.X] > 300 and counts[Action.D] > 50 and counts[Action.U] > 40 and counts[Action.Z] > 30


def test_each_action_does_what_annex_e_says() -> None:
    ds = _deid().dataset(_source())
    assert ds.PatientName == ""  # Z: zero length
    assert "InstitutionName" not in ds  # X/Z/D resolved to X
    assert ds.ClinicalTrialSponsorName == "REMOVED"  # D: a dummy value
    assert "StationName" not in ds  # X/Z/D resolved to X
    assert ds.StudyInstanceUID == Pseudonymizer(KEY).uid("1.2.3.4.5.6")  # U: keyed UID
    assert ds.PatientID == Pseudonymizer(KEY).pseudonym("patient_id", "MRN1234567")  # keyed, not Z
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1"  # a standard UID is not an identifier
    assert ds.Modality == "DX" and ds.BodyPartExamined == "CHEST" and ds.Manufacturer == "ACME"  # K
    assert ds.StudyTime == ""
    assert "RequestAttributesSequence" not in ds  # X on a sequence removes it whole


def test_nested_sequences_are_cleaned_too() -> None:
    ds = _source()
    deep = Dataset()
    deep.AccessionNumber = "A123456789"
    deep.PatientName = "Doe^Jane"
    deep.StudyInstanceUID = "1.2.3.4.5.6"
    ds.ProcedureCodeSequence[0].ConceptNameCodeSequence = Sequence([deep])  # not listed: recursed
    clean = _deid().dataset(ds)
    inner = clean.ProcedureCodeSequence[0]
    assert inner.ReferencedSOPInstanceUID == Pseudonymizer(KEY).uid("1.2.3.4.5.7")
    nested = inner.ConceptNameCodeSequence[0]
    assert nested.StudyInstanceUID == Pseudonymizer(KEY).uid("1.2.3.4.5.6")
    assert not nested.get("PatientName")
    assert nested.AccessionNumber == Pseudonymizer(KEY).pseudonym("accession_number", "A123456789")


def test_private_tags_curves_and_overlays_are_removed_unless_safe() -> None:
    ds = _deid().dataset(_source())
    assert not any(elem.tag.is_private for elem in ds)
    assert 0x60003000 not in ds and 0x50000010 not in ds
    kept = _deid(safe_private=frozenset({("ACME PACS", 0x02)})).dataset(_source())
    private = {int(elem.tag): elem.value for elem in kept if elem.tag.is_private}
    assert "1.5" in [str(v) for v in private.values()]  # the safe element and its creator survive
    assert "Jane Doe" not in [str(v) for v in private.values()]


def test_dates_shift_by_one_secret_offset_per_patient() -> None:
    first, second = _source(), _source()
    second.StudyDate = "20200301"
    a, b = _deid().dataset(first), _deid().dataset(second)
    day = lambda text: dt.datetime.strptime(text[:8], "%Y%m%d").date()  # noqa: E731
    assert day(b.StudyDate) - day(a.StudyDate) == dt.date(2020, 3, 1) - dt.date(2020, 1, 15)  # interval kept
    assert a.StudyDate != "20200115"
    assert day(a.PatientBirthDate) - day(a.StudyDate) == dt.date(1950, 1, 2) - dt.date(2020, 1, 15)
    assert a.AcquisitionDateTime[8:] == "101500.000000"  # date-time: the date moves, the time stays
    other = _source()
    other.PatientID = "MRN7654321"
    assert _deid().dataset(other).StudyDate != a.StudyDate  # another patient, another shift


def test_without_a_patient_id_dates_are_removed_not_shifted() -> None:
    ds = _source()
    del ds.PatientID
    clean = _deid().dataset(ds)
    assert clean.StudyDate == "" and clean.PatientBirthDate == ""
    assert "LongitudinalTemporalInformationModified" not in clean


def test_clean_descriptors_keeps_the_description_without_identifiers() -> None:
    clean = _deid().dataset(_source())
    assert "CHEST PA LAT" in clean.StudyDescription
    assert "Jane Doe" not in clean.StudyDescription and "01/15/2020" not in clean.StudyDescription
    assert "StudyDescription" not in _deid(clean_descriptors=False).dataset(_source())  # plain X


def test_the_method_and_options_are_recorded() -> None:
    clean = _deid().dataset(_source())
    assert clean.PatientIdentityRemoved == "YES"
    codes = {item.CodeValue for item in clean.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113107", "113105"}
    assert all(len(value) <= 64 for value in clean.DeidentificationMethod)
    assert clean.LongitudinalTemporalInformationModified == "MODIFIED"
