"""The chain on s3:// against a real S3-compatible server on loopback (SeaweedFS, started by the tests).

Credentials and the endpoint come from the standard AWS environment variables only (never the URL), so the
Dask workers the real engine starts reach the server the same way a cluster's workers would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest

from radpipe.commands import curate_dataset, ingest_sources, validate
from radpipe.dataset.guard import DatasetBusy, dataset_lock
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.quality.status import require_validated
from radpipe.settings import get_settings
from tests import s3server

s3_server = s3server.s3_server
s3_env = s3server.s3_env

pytestmark = pytest.mark.integration


def _archive_files(archive: Path) -> list[Path]:
    return sorted(p for p in archive.rglob("*") if p.is_file() and p.parent != archive)


def _rows(fs: fsspec.AbstractFileSystem, folder: str) -> int:
    return sum(pq.ParquetFile(fs.open(f, "rb")).metadata.num_rows for f in fs.find(folder) if f.endswith(".parquet"))


def test_local_archive_into_s3_dataset_then_rerun_curate_validate(archive: Path, s3_env: str) -> None:
    """The CLI's path (ingest_sources: a real Dask cluster, then the PHI gate) into s3://, and what follows."""
    dataset = s3_env + "dataset"
    first = ingest_sources(str(archive / "dicom"), str(archive / "reports"), dataset, "cxr-224")
    dicom_files = sum(1 for p in _archive_files(archive / "dicom"))
    assert first.files_in == dicom_files and first.balanced and first.instances_added > 0
    fs, root = fsspec.url_to_fs(dataset)
    assert _rows(fs, f"{root}/instances") == first.instances_added

    again = ingest_sources(str(archive / "dicom"), str(archive / "reports"), dataset, "cxr-224")
    assert (again.files_in, again.instances_added, again.reports_added) == (0, 0, 0)
    assert (again.recovered_batches, again.dropped_batches) == (0, 0)  # no emptied prefix counted as rolled back
    assert _rows(fs, f"{root}/instances") == first.instances_added  # nothing doubled

    curation = curate_dataset(dataset)
    assert sum(curation.studies_per_split.values()) == first.studies and curation.patients_in_several_splits == 0
    report = validate(dataset)
    assert report.passed, report.failures
    assert report.data_docs.startswith("s3://") and fs.exists(report.data_docs)
    with fs.open(f"{root}/_quality/summary.json", "r") as fh:
        assert json.load(fh)["dataset_version"] == report.dataset_version
    assert require_validated(DatasetStore(dataset)) == report.dataset_version  # read where the dataset lives


def test_s3_source_with_folder_markers_into_s3_and_local(
    archive: Path, s3_env: str, deid: Deidentifier, tmp_path: Path
) -> None:
    """Zero-byte folder markers (AWS console "Create folder", Hadoop S3A) are folders, not empty files."""
    fs, root = fsspec.url_to_fs(s3_env)
    files = _archive_files(archive)
    for path in files:
        fs.pipe(f"{root}/src/{path.relative_to(archive)}", path.read_bytes())
    folders = {str(p.parent.relative_to(archive)) for p in files}
    for folder in folders:
        fs.pipe(f"{root}/src/{folder}/", b"")  # a marker object named "folder/"
    dicom = sum(1 for p in files if p.parts[len(archive.parts)] == "dicom")

    for dataset in (s3_env + "from-s3", str(tmp_path / "from-s3-local")):
        summary = ingest(
            s3_env + "src/dicom",
            s3_env + "src/reports",
            dataset,
            deid,
            get_profile("cxr-224"),
            SerialEngine(),
            home=get_settings().home,
        )
        assert summary.files_in == dicom and summary.balanced, summary.quarantined
        assert "empty_file" not in summary.quarantined


def test_an_s3_folder_is_listed_a_prefix_per_task_on_the_dask_workers(
    archive: Path, s3_env: str, tmp_path: Path
) -> None:
    """Listing split across the engine's workers gives what one listing gives: same entries, same order,
    folder markers left out, objects beside the prefixes kept."""
    from radpipe.engine.dask import dask_engine
    from radpipe.ingest.sources import walk, walk_split

    fs, root = fsspec.url_to_fs(s3_env)
    files = _archive_files(archive / "dicom")
    for path in files:
        fs.pipe(f"{root}/split/{path.relative_to(archive / 'dicom')}", path.read_bytes())
    for folder in {str(p.parent.relative_to(archive / "dicom")) for p in files}:
        fs.pipe(f"{root}/split/{folder}/", b"")  # folder markers
    fs.pipe(f"{root}/split/loose.dcm", files[0].read_bytes())  # an object beside the prefixes
    first = sorted({p.relative_to(archive / "dicom").parts[0] for p in files})[0]
    fs.pipe(f"{root}/split/{first}", b"")  # a marker named like its folder, without the slash (Hadoop S3A)
    fs.invalidate_cache()
    prefixes = [e for e in fs.ls(f"{root}/split", detail=True) if e["type"] == "directory"]
    assert len(prefixes) >= 3

    with dask_engine(None, 2, tmp_path / "dask") as engine:
        split = list(walk_split(s3_env + "split", engine))
    assert split == list(walk(s3_env + "split"))
    assert len(split) == len(files) + 1 and all(size > 0 for _, size, _ in split)


def test_the_dataset_lock_holds_on_s3(s3_env: str) -> None:
    store = DatasetStore(s3_env + "locked")
    with dataset_lock(store, "first"):
        with pytest.raises(DatasetBusy, match="being written by another run"):
            with dataset_lock(store, "second", wait=0):
                pass
    with dataset_lock(store, "third"):  # released: the next run takes it
        pass


def test_erasure_on_s3_removes_the_patient_and_keeps_the_others(archive: Path, s3_env: str, deid: Deidentifier) -> None:
    from radpipe.commands import erase, phi_gate

    dataset = s3_env + "erase"
    ingest(
        str(archive / "dicom"),
        str(archive / "reports"),
        dataset,
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    phi_gate(dataset)
    truth = [json.loads(line) for line in (archive / "truth.jsonl").read_text().splitlines()]
    target = next(t for t in truth if t["has_images"])["patient_id"]
    pseudonym = deid.pseudonymizer.pseudonym("patient_id", target)
    store = DatasetStore(dataset)
    before = store.read_table("instances", ["patient_id"])["patient_id"].to_pylist()
    assert pseudonym in before

    summary = erase(dataset, target)

    after = store.read_table("instances", ["patient_id"])["patient_id"].to_pylist()
    assert summary.rows_removed["instances"] == before.count(pseudonym) and pseudonym not in after
    assert len(after) == len(before) - before.count(pseudonym)  # every other patient's row kept


def _table_keys(dataset: str) -> dict[str, list[str]]:
    store = DatasetStore(dataset)
    keys = {"instances": "sop_instance_uid", "images": "sop_instance_uid", "reports": "report_id"}
    found = {table: sorted(store.read_table(table, [column])[column].to_pylist()) for table, column in keys.items()}
    found["_ledger"] = sorted(store.read_table("_ledger", ["source_key"])["source_key"].to_pylist())
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_commits", [1])
def test_kill_9_during_an_ingest_into_s3_then_rerun_gives_the_uninterrupted_rows(
    tmp_path: Path, s3_env: str, kill_after_commits: int
) -> None:
    from radpipe.synth import write_archive

    src = tmp_path / "src"
    write_archive(src, studies=40, seed=5)
    command = [sys.executable, "-m", "radpipe.cli", "ingest", "--dicom", str(src / "dicom")]
    command += ["--reports", str(src / "reports"), "--out"]
    environment = {**os.environ, "RADPIPE_DASK_WORKERS": "1"}  # batches commit one after another
    fs, root = fsspec.url_to_fs(s3_env)

    whole = subprocess.run([*command, s3_env + "whole"], env=environment, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]

    killed = s3_env + "killed"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    process = subprocess.Popen([*command, killed], env=environment, start_new_session=True, **quiet)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        committed = [f for f in fs.find(f"{root}/killed/_ledger") if f.endswith(".parquet")]
        staged = [f for f in fs.find(f"{root}/killed/_staging") if f.endswith(".parquet")]
        if len(committed) >= kill_after_commits and staged:
            break
        time.sleep(0.05)
    assert process.poll() is None, "ingest finished before it could be killed; make the archive larger"
    os.killpg(process.pid, signal.SIGKILL)  # driver, scheduler and workers
    process.wait()

    rerun = subprocess.run([*command, killed], env=environment, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    expected, got = _table_keys(s3_env + "whole"), _table_keys(killed)
    assert got == expected  # exactly the rows of the uninterrupted run: none lost, none doubled
    assert len(got["_ledger"]) == len(set(got["_ledger"]))
