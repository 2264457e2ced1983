"""CT series through ingest: files in any order become correctly ordered volumes, or recorded geometry issues."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.preprocess.volume import get_volume_profile
from radpipe.settings import get_settings

SPACING = 5.0  # mm between slices
SIZE = 48


def _slice(series: str, study: str, z: float, value: int, number: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID, ds.StudyInstanceUID = series, study
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"  # one frame of reference for every series
    ds.PatientID, ds.PatientName, ds.AccessionNumber = "CT-PATIENT-1", "Doe^Jane", "ACC-CT-1"
    ds.StudyDate, ds.Modality, ds.BodyPartExamined = "20240102", "CT", "CHEST"
    ds.InstanceNumber = number  # deliberately unrelated to position in the shuffled series
    ds.ImagePositionPatient = [-120.0, -120.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [5.0, 5.0]
    ds.SliceThickness = SPACING
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelData = np.full((SIZE, SIZE), value + 1024, dtype="<u2").tobytes()
    return ds


def _series(folder: Path, zs: list[float], seed: int) -> str:
    """Slices whose value is their z (in HU), written under hashed file names in shuffled order."""
    series, study = generate_uid(), generate_uid()
    rng = np.random.default_rng(seed)
    for number, z in zip(rng.permutation(len(zs)) + 1, zs, strict=True):
        ds = _slice(series, study, z, value=int(z), number=int(number))
        name = hashlib.sha1(ds.SOPInstanceUID.encode()).hexdigest()[:12] + ".dcm"
        ds.save_as(folder / name, enforce_file_format=True)
    return series


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, deid: Deidentifier) -> DatasetStore:
    root = tmp_path_factory.mktemp("ct")
    source = root / "dicom"
    source.mkdir()
    good = [float(z) for z in np.arange(0, 200, SPACING)]  # 40 slices over 200 mm
    missing = [z for z in good if z != 100.0]
    duplicate = [*good[:20], good[19], *good[20:]]
    for seed, zs in enumerate((good, missing, duplicate)):
        _series(source, zs, seed)
    ingest(
        str(source), None, str(root / "dataset"), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home
    )
    return DatasetStore(str(root / "dataset"))


def test_every_file_is_an_instance_and_every_slice_is_kept(ingested: DatasetStore) -> None:
    assert ingested.read_table("instances").num_rows == 40 + 39 + 41
    assert ingested.read_table("slices").num_rows == 40 + 39 + 41
    assert ingested.read_table("quarantine").num_rows == 0


def test_shuffled_files_assemble_in_slice_order(ingested: DatasetStore) -> None:
    volumes = {len(r["issues"]): r for r in ingested.read_table("volumes").to_pylist() if not r["issues"]}
    [row] = volumes.values()
    profile = get_volume_profile("ct-small")
    assert row["profile"] == profile.name and tuple(row["shape"]) == profile.size
    assert row["source_spacing"] == pytest.approx([SPACING, 5.0, 5.0])
    volume = np.frombuffer(row["pixels"], row["dtype"]).reshape(row["shape"])
    # Each slice holds its z in HU, so a correctly ordered volume rises along z where it holds data.
    centre = volume[:, profile.size[1] // 2, profile.size[2] // 2].astype(float)
    inside = centre[centre > -1000]
    assert len(inside) > 10 and np.all(np.diff(inside) > 0)


def test_a_missing_slice_and_a_doubled_position_are_recorded_not_assembled(ingested: DatasetStore) -> None:
    held = [r for r in ingested.read_table("volumes").to_pylist() if r["issues"]]
    kinds = sorted(issue.split(":", 1)[0] for row in held for issue in row["issues"])
    assert "missing_slice" in kinds and "duplicate_position" in kinds
    assert all(row["pixels"] is None for row in held)
    assert all("Doe" not in issue and "CT-PATIENT" not in issue for row in held for issue in row["issues"])


def test_only_assembled_volumes_count_for_their_study(ingested: DatasetStore) -> None:
    studies = ingested.read_table("studies", ["n_volumes", "n_images"]).to_pylist()
    assert sorted(s["n_volumes"] for s in studies) == [0, 0, 1]
    assert all(s["n_images"] == 0 for s in studies)


def test_erasing_the_patient_removes_their_slices_and_volumes(ingested: DatasetStore, tmp_path: Path) -> None:
    import shutil

    from radpipe.commands import erase

    copy = tmp_path / "dataset"
    shutil.copytree(ingested.root, copy)
    summary = erase(str(copy), "CT-PATIENT-1")
    store = DatasetStore(str(copy))
    assert summary.rows_removed["slices"] == 120 and summary.rows_removed["volumes"] == 3
    assert store.read_table("slices").num_rows == 0 and store.read_table("volumes").num_rows == 0
