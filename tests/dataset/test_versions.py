"""Dataset versions as lineage: DATASET@VERSION reads exactly the rows of a recorded version, after later
ingests, curations and an erasure of another patient; an erasure leaves no version that returns its patient's
rows; optimize compacts without changing a row or a verdict."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from radpipe.commands import curate_dataset, erase, optimize, phi_gate, validate
from radpipe.dataset.guard import dataset_lock
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.deid.gate import require_gate_passed
from radpipe.errors import ConfigError, SourceError
from radpipe.quality.status import require_validated
from radpipe.synth import write_archive
from tests.ingesting import serial_ingest
from tests.tables import read_delta

pytestmark = pytest.mark.integration

TABLES = ("instances", "images", "reports", "studies", "curation")


def _ingest(archive: Path, dataset: Path, deid: Deidentifier) -> None:
    serial_ingest(archive, dataset, deid)
    phi_gate(str(dataset))
    curate_dataset(str(dataset))
    assert validate(str(dataset)).passed


def _rows(store: DatasetStore) -> dict[str, list[str]]:
    """Each table's rows, as sorted JSON lines (pixels left out: their rows are named by UID)."""
    rows = {}
    for table in TABLES:
        data = store.read_table(table)
        data = data.drop_columns([c for c in ("pixels",) if c in data.column_names])
        rows[table] = sorted(json.dumps(r, sort_keys=True, default=str) for r in data.to_pylist())
    return rows


def _patients(archive: Path) -> list[str]:
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    return sorted({t["patient_id"] for t in truth if t["has_images"]})


@pytest.fixture
def two_arrivals(tmp_path: Path, deid: Deidentifier) -> tuple[Path, Path, Path, str]:
    """(first archive, second archive, dataset, the version validated after the first arrival)."""
    first, second, dataset = tmp_path / "first", tmp_path / "second", tmp_path / "dataset"
    write_archive(first, studies=8, seed=5, phi=True)  # realistic identifiers: the two hold different patients
    write_archive(second, studies=6, seed=6, phi=True)
    assert not set(_patients(first)) & set(_patients(second))
    _ingest(first, dataset, deid)
    return first, second, dataset, require_validated(DatasetStore(str(dataset)))


def test_a_version_names_one_datasets_state_and_travels_with_a_copy(
    two_arrivals, tmp_path: Path, deid: Deidentifier
) -> None:
    """Two datasets whose tables went through the same commits had one version (a digest of Delta version
    numbers only): a new 1000-study demo dataset got the version of an earlier 300-study one, and promotion
    compared a candidate with the champion's stored evaluation on the other data under that one tag. Now the
    dataset's id is in the digest; a byte-for-byte copy keeps both id and version."""
    import shutil

    first, _second, dataset, version = two_arrivals
    other = tmp_path / "other"
    _ingest(first, other, deid)
    store = DatasetStore(str(other))
    assert {t: store.table_version(t) for t in TABLES} == {
        t: DatasetStore(str(dataset)).table_version(t) for t in TABLES
    }
    assert require_validated(store) != version
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    assert require_validated(DatasetStore(str(copy))) == version


def test_a_recorded_version_reads_its_rows_after_ingests_curation_and_an_erasure(
    two_arrivals, deid: Deidentifier
) -> None:
    _, second, dataset, version = two_arrivals
    trained_on = _rows(DatasetStore(str(dataset)))
    _ingest(second, dataset, deid)
    erase(str(dataset), _patients(second)[0])  # a patient the recorded version never held
    curate_dataset(str(dataset))
    latest = DatasetStore(str(dataset))
    assert _rows(latest) != trained_on

    pinned = DatasetStore(f"{dataset}@{version}")
    assert _rows(pinned) == trained_on
    assert require_validated(pinned) == version  # the version passed validation then: still usable
    require_gate_passed(pinned)
    with pytest.raises(ConfigError, match="past version"), dataset_lock(pinned, "test"):
        pass  # nothing writes into a past version
    with pytest.raises(SourceError, match="no dataset version"):
        DatasetStore(f"{dataset}@{'0' * 16}")
    shown = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "summary", f"{dataset}@{version}"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "Delta version" in shown.stdout, shown.stderr[-1000:]
    refused = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "curate", f"{dataset}@{version}"], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "past version" in refused.stderr and "Traceback" not in refused.stderr


def test_after_an_erasure_no_version_returns_the_patients_rows(two_arrivals, deid: Deidentifier) -> None:
    first, _, dataset, version = two_arrivals
    source_patient = _patients(first)[0]
    patient = deid.pseudonymizer.pseudonym("patient_id", source_patient)
    store = DatasetStore(str(dataset))
    ours = {r["sop_instance_uid"] for r in store.read_table("instances").to_pylist() if r["patient_id"] == patient}
    images_before = store.count_rows("images")
    assert ours

    erase(str(dataset), source_patient)

    # Every Delta version of every table either reads without the patient or refuses to be read.
    readable = refused = 0
    for table in ("instances", "images", "studies", "curation"):
        for number in range(DatasetStore(str(dataset)).table_version(table) + 1):
            try:
                rows = DatasetStore(str(dataset), versions={table: number}).read_table(table).to_pylist()
            except SourceError:
                refused += 1
                continue
            readable += 1
            assert not [r for r in rows if r.get("patient_id") == patient or r.get("sop_instance_uid") in ours]
    assert readable and refused
    # No data file in any table folder (current, older versions', orphans) holds them.
    for folder in dataset.iterdir():
        for file in folder.glob("*.parquet"):
            data = pq.read_table(file)
            if "patient_id" in data.column_names:
                assert patient not in data.column("patient_id").to_pylist(), file
    with pytest.raises(SourceError, match="can no longer be read"):
        DatasetStore(f"{dataset}@{version}").read_table("images")
    # Everyone else is intact.
    assert read_delta(dataset / "images").num_rows == images_before - len(ours)


def test_optimize_compacts_without_changing_a_row_or_a_verdict(two_arrivals, deid: Deidentifier) -> None:
    _, second, dataset, version = two_arrivals
    _ingest(second, dataset, deid)
    store = DatasetStore(str(dataset))
    before = _rows(store)
    ledger_files = len(store.table_files("_ledger"))
    assert ledger_files > 1

    done = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "optimize", str(dataset), "--retention-days", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "_ledger/:" in done.stdout, done.stderr[-1000:]
    summary = optimize(str(dataset), retention_days=0)  # a second run: nothing left to compact
    assert summary.compacted == 0

    assert len(store.table_files("_ledger")) == 1
    assert _rows(store) == before
    texts = {t[:24] for t in store.read_table("reports", ["text"])["text"].to_pylist() if t and len(t) > 24}
    assert texts and len(store.table_files("reports")) == 1  # reports/ was compacted by delta-rs's own writer
    for log in dataset.glob("*/_delta_log/*"):  # ... which wrote no column statistics (report text) into a log
        assert not any(text.encode() in log.read_bytes() for text in texts), log
    require_validated(store)  # compaction carried the verdicts: no re-validation needed
    require_gate_passed(store)
    ledger_line = re.search(r"_ledger/: (\d+) -> 1 files, (\d+) old files vacuumed", done.stdout)
    assert ledger_line and int(ledger_line[1]) == ledger_files and int(ledger_line[2]) >= ledger_files
    with pytest.raises(SourceError, match="can no longer be read"):  # retention 0: older versions are gone
        DatasetStore(f"{dataset}@{version}").read_table("curation")
