"""Curation: stable patient-level splits, duplicates flagged, synthetic data kept out of evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest

from radpipe.commands import curate_dataset, phi_gate
from radpipe.curate.duplicates import hamming, near_duplicate_groups, perceptual_hash
from radpipe.curate.splits import SplitFractions, assign_split
from radpipe.deid import Deidentifier, Pseudonymizer
from radpipe.engine import SerialEngine
from radpipe.errors import ConfigError
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from radpipe.synth import write_archive
from tests.tables import read_delta


def test_splits_follow_fractions_and_never_move() -> None:
    p = Pseudonymizer(b"split-key-0123456789abcdef")
    patients = [f"patient-{i}" for i in range(5000)]
    first = {x: assign_split(x, p, SplitFractions()) for x in patients}
    shares = {s: sum(1 for v in first.values() if v == s) / len(patients) for s in ("train", "validation", "test")}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["test"] - 0.1) < 0.02
    # The archive grows: old patients keep their split (it depends on nothing but the patient).
    assert all(assign_split(x, p, SplitFractions()) == first[x] for x in patients)
    with pytest.raises(ConfigError):
        SplitFractions(0.9, 0.2, 0.1)


def test_near_duplicates_are_found_and_different_images_are_not() -> None:
    rng = np.random.default_rng(0)
    base = (rng.random((224, 224)) * 255).astype(np.float32)
    base = np.asarray(__import__("cv2").GaussianBlur(base, (0, 0), 6))
    copy = np.clip(base * 0.95 + 4 + rng.normal(0, 2, base.shape), 0, 255)
    other = np.asarray(__import__("cv2").GaussianBlur((rng.random((224, 224)) * 255).astype(np.float32), (0, 0), 6))
    h = {"a": perceptual_hash(base), "b": perceptual_hash(copy), "c": perceptual_hash(other)}
    assert hamming(h["a"], h["b"]) <= 8 < hamming(h["a"], h["c"])
    assert near_duplicate_groups(h.items(), threshold=8) == {"b": "a"}


@pytest.fixture()
def archive_with_copies(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    write_archive(archive, studies=8, seed=17)
    files = sorted((archive / "dicom").rglob("*.dcm"))
    ds = pydicom.dcmread(files[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()  # a re-export: new UID, same pixels
    ds.save_as(archive / "dicom" / "re-export.dcm", enforce_file_format=True)
    ds = pydicom.dcmread(files[1])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.WindowCenter, ds.WindowWidth = None, None
    arr = ds.pixel_array.astype(np.int64)
    ds.PixelData = np.clip(arr + 3, 0, (1 << int(ds.BitsStored)) - 1).astype(ds.pixel_array.dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(archive / "dicom" / "rescan.dcm", enforce_file_format=True)  # almost the same pixels
    return archive


def test_curation_flags_duplicates_and_leaks_no_patient(archive_with_copies: Path, tmp_path: Path, deid) -> None:
    dataset = tmp_path / "dataset"
    ingest(
        str(archive_with_copies / "dicom"),
        None,
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    phi_gate(str(dataset))
    summary = curate_dataset(str(dataset))
    assert summary.patients_in_several_splits == 0
    assert summary.exact_duplicates == 1 and summary.near_duplicates >= 1
    rows = read_delta(dataset / "curation").to_pylist()
    flagged = [r for r in rows if r["prune"]]
    assert {r["duplicate_kind"] for r in flagged} == {"exact", "near"}
    assert all(r["duplicate_of"] and r["prune_reason"] for r in flagged)
    studies = read_delta(dataset / "studies").to_pylist()
    assert all(s["split"] in ("train", "validation", "test") for s in studies)


def test_synthetic_studies_stay_out_of_a_real_datasets_evaluation_splits(curated_copy: Path) -> None:
    studies_file = next((curated_copy / "studies").glob("*.parquet"))
    table = pq.read_table(studies_file)
    flags = table.column("is_synthetic").to_pylist()
    flags[0] = False  # one real study makes this a real dataset
    import pyarrow as pa

    pq.write_table(
        table.set_column(table.schema.get_field_index("is_synthetic"), "is_synthetic", pa.array(flags)), studies_file
    )
    curate_dataset(str(curated_copy))
    studies = read_delta(curated_copy / "studies").to_pylist()
    assert all(s["split"] == "train" for s in studies if s["is_synthetic"])


@pytest.fixture()
def curated_copy(tmp_path: Path, archive: Path, deid: Deidentifier) -> Path:
    dataset = tmp_path / "real"
    ingest(
        str(archive / "dicom"),
        None,
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    phi_gate(str(dataset))
    return dataset
