import os
import re
import stat

import pytest
from pydicom.dataset import Dataset

from radpipe.deid import Deidentifier, Pseudonymizer, load_key
from radpipe.errors import ConfigError


def test_pseudonyms_are_keyed_stable_and_domain_separated() -> None:
    a, b = Pseudonymizer(b"k" * 32), Pseudonymizer(b"j" * 32)
    assert a.pseudonym("patient_id", "MRN123") == a.pseudonym("patient_id", " MRN123 ")
    assert a.pseudonym("patient_id", "MRN123") != b.pseudonym("patient_id", "MRN123")
    assert a.pseudonym("patient_id", "X1") != a.pseudonym("accession_number", "X1")
    assert len(a.pseudonym("accession_number", "A1")) <= 16  # DICOM SH


def test_uid_pseudonyms_are_valid_dicom_uids() -> None:
    uid = Pseudonymizer(b"k" * 32).uid("1.2.840.113619.2.55.3.604688119")
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid)
    assert len(uid) <= 64


def test_key_is_created_once_with_mode_0600(tmp_path) -> None:
    first = load_key(None, tmp_path)
    assert stat.S_IMODE((tmp_path / "deid.key").stat().st_mode) == 0o600
    assert load_key(None, tmp_path) == first


def test_key_readable_by_others_is_refused(tmp_path) -> None:
    load_key(None, tmp_path)
    os.chmod(tmp_path / "deid.key", 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_key(None, tmp_path)


def test_short_environment_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="too short"):
        load_key("short", "unused")  # type: ignore[arg-type]


def test_dataset_identifiers_are_replaced_and_dates_shifted(deid: Deidentifier) -> None:
    ds = Dataset()
    ds.PatientID, ds.PatientName, ds.AccessionNumber = "MRN123", "Doe^Jane", "ACC9"
    ds.StudyInstanceUID = "1.2.3.4.5"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # a standard UID: kept
    ds.StudyDate = "20200115"
    ds.InstitutionName = "St. Mary's General Hospital"
    block = ds.private_block(0x0011, "ACME", create=True)
    block.add_new(0x01, "LO", "Jane Doe")
    deid.dataset(ds)
    assert ds.PatientID == deid.pseudonymizer.pseudonym("patient_id", "MRN123")
    assert ds.StudyInstanceUID == deid.pseudonymizer.uid("1.2.3.4.5")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1"
    assert not ds.get("PatientName") and "InstitutionName" not in ds
    assert all(not elem.tag.is_private for elem in ds)
    assert ds.StudyDate != "20200115" and len(ds.StudyDate) == 8
    assert ds.PatientIdentityRemoved == "YES"
