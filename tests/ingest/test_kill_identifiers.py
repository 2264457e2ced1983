"""kill -9 at every point of the commit protocol, then rerun: the PHI gate's identifier store equals the store
of an uninterrupted run, covers every committed batch, and the gate still catches a planted identifier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radpipe.commands import phi_gate
from radpipe.dataset.guard import dataset_id
from radpipe.dataset.schema import REPORTS
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.deid.gate import PhiGateFailed, committed_batches
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from radpipe.synth import write_archive
from tests.tables import commit_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CXR studies, a CT/MR volume study, planted identifiers, and files that are not DICOM."""
    out = tmp_path_factory.mktemp("kill-source")
    write_archive(out, studies=24, seed=13, phi=True, volumes=1)
    (out / "dicom" / "notes.txt").write_text("not an image")
    (out / "dicom" / "empty.dcm").write_bytes(b"")
    return out


@pytest.fixture(scope="module")
def uninterrupted(source: Path, tmp_path_factory: pytest.TempPathFactory, deid: Deidentifier) -> set[str]:
    """The store of an uninterrupted run (same key: the same hashes)."""
    home, dataset = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("clean") / "dataset"
    args = (str(source / "dicom"), str(source / "reports"), str(dataset), deid, get_profile("cxr-224"))
    ingest(*args, SerialEngine(), home=home)
    identity = dataset_id(DatasetStore(str(dataset)))
    assert identity is not None
    stored = IdentifierStore(home, identity).load()
    assert len(stored) > 100
    return stored


def _ingest(point: str, n: int, source: Path, dataset: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", *(("tests.ingest.killpoint", point, str(n)) if point else ("radpipe.cli",))]
    command += ["ingest", "--dicom", str(source / "dicom"), "--reports", str(source / "reports"), "--out", str(dataset)]
    # One worker: batches commit one after another. A session of its own: the kill takes the workers too.
    env = {**os.environ, "RADPIPE_DASK_WORKERS": "1"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = process.communicate(timeout=600)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.parametrize(
    ("point", "n"),
    [
        ("after_commit", 1),  # after the first commits
        ("after_commit", 3),
        ("before_commit", 2),  # identifiers stored, the batch never commits
        ("mid_commit", 2),  # manifest written, one file moved
        ("after_last_commit", 0),
        ("mid_merge", 0),
    ],
)
def test_after_a_kill_and_a_rerun_the_store_equals_an_uninterrupted_runs(
    point: str, n: int, source: Path, uninterrupted: set[str], tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    killed = _ingest(point, n, source, dataset)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    rerun = _ingest("", 0, source, dataset)
    assert rerun.returncode == 0, rerun.stderr[-2000:]  # the CLI ran the gate, and it passed
    # Stored before each commit: the rerun needs no rebuild from the sources (which may be gone by then).
    assert "PHI gate: passed" in rerun.stdout and "identifiers rebuilt" not in rerun.stdout
    store = DatasetStore(str(dataset))
    identity = dataset_id(store)
    assert identity is not None
    identifiers = IdentifierStore(get_settings().home, identity)
    assert identifiers.load() == uninterrupted
    assert identifiers.covered() == committed_batches(store)
    assert not list(identifiers.folder.glob("batch-*")) and not list(identifiers.folder.glob(".*.tmp"))

    # A planted family name from the first study with images (committed before the kill) is still caught.
    truth = next(t for t in map(json.loads, (source / "truth.jsonl").read_text().splitlines()) if t["has_images"])
    planted = {"report_id": "x", "text": f"Discussed with {truth['phi'][1]} by phone."}
    pq.write_table(pa.Table.from_pylist([planted], schema=REPORTS), dataset / "reports" / "part-tampered.parquet")
    commit_files(dataset / "reports", "part-tampered.parquet")
    with pytest.raises(PhiGateFailed, match=r"reports\.text \(1 rows: person name\)"):
        phi_gate(str(dataset))
