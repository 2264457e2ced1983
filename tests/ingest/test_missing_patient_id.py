"""Files without a PatientID: each study stands in for its patient, never one shared empty ID."""

from __future__ import annotations

from pathlib import Path

import pydicom

from radpipe.commands import curate_dataset, phi_gate, validate
from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from radpipe.synth import write_archive
from tests.tables import read_delta


def test_studies_without_patient_id_are_each_their_own_patient(tmp_path: Path, deid: Deidentifier) -> None:
    archive = tmp_path / "archive"
    write_archive(archive, studies=12, seed=17)
    files = sorted((archive / "dicom").rglob("*.dcm"))
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.PatientID  # as anonymised exports and some modalities write them
        ds.save_as(path)
    dataset = tmp_path / "dataset"
    summary = ingest(
        str(archive / "dicom"),
        None,
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    assert summary.instances_without_patient_id == summary.instances_added == len(files)
    rows = read_delta(dataset / "instances", columns=["study_instance_uid", "patient_id"]).to_pylist()
    patient_of: dict[str, set[str]] = {}
    for row in rows:
        patient_of.setdefault(row["study_instance_uid"], set()).add(row["patient_id"])
    assert all(len(p) == 1 and "" not in p for p in patient_of.values())  # one per study, never empty
    assert len({p for ps in patient_of.values() for p in ps}) == len(patient_of) > 1  # distinct per study
    phi_gate(str(dataset))
    curated = curate_dataset(str(dataset))
    assert curated.patients_in_several_splits == 0 and len(curated.studies_per_split) > 1
    assert validate(str(dataset)).passed
