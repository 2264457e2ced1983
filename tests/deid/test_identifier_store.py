"""The PHI gate's identifier store covers every committed batch, or the gate refuses; a rerun restores it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radpipe.commands import phi_gate
from radpipe.dataset.guard import dataset_id
from radpipe.dataset.schema import REPORTS
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.deid.gate import IdentifierStoreIncomplete, PhiGateFailed, committed_batches, require_gate_passed
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.settings import get_settings
from radpipe.synth import write_archive
from tests.ingesting import serial_ingest
from tests.tables import commit_files


def test_merging_keeps_committed_batches_and_drops_those_that_never_committed(tmp_path: Path) -> None:
    store = IdentifierStore(tmp_path, "ds")
    store.add_batch("run1-d00000", {"a": "person name", "b": "patient id"})
    store.add_batch("run1-d00001", {})  # a batch with no identifiers is still recorded as seen
    store.add_batch("run1-d00002", {"c": "date"})  # staged by a killed run, never committed
    assert store.covered() == {"run1-d00000", "run1-d00001", "run1-d00002"}
    store.merge_batches({"run1-d00000", "run1-d00001", "older"}, "run2")
    assert store.covered() == {"run1-d00000", "run1-d00001"}
    assert store.load() == {"a": "person name", "b": "patient id"}
    assert [e.path.name for e in store.entries()] == ["run-run2.parquet"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in store.folder.iterdir())


def test_an_entry_written_before_batches_were_recorded_covers_no_batch_and_goes_once_rebuilt(tmp_path: Path) -> None:
    store = IdentifierStore(tmp_path, "ds")
    store.folder.mkdir(parents=True)
    pq.write_table(pa.table({"hash": ["a"]}), store.folder / "part-20260101T000000-abcdef.parquet")
    assert store.load() == {"a": "identifier"} and store.covered() == set()
    store.add_batch("old-d00000", {"b": "person name"})  # what a rerun rebuilds from the sources
    store.merge_batches({"old-d00000", "old-d00001"}, "run1")
    assert store.load() == {"a": "identifier", "b": "person name"}  # not everything rebuilt yet: kept
    store.add_batch("old-d00001", {})
    store.merge_batches({"old-d00000", "old-d00001"}, "run2")
    assert store.load() == {"b": "person name"} and store.covered() == {"old-d00000", "old-d00001"}


@pytest.fixture()
def ingested(tmp_path: Path, deid: Deidentifier) -> tuple[Path, Path, IdentifierStore]:
    archive, dataset = tmp_path / "archive", tmp_path / "dataset"
    write_archive(archive, studies=10, seed=41, phi=True)
    serial_ingest(archive, dataset, deid)
    identity = dataset_id(DatasetStore(str(dataset)))
    assert identity is not None
    return archive, dataset, IdentifierStore(get_settings().home, identity)


def _plant(archive: Path, dataset: Path) -> str:
    """A planted family name in a report row: what the gate must catch."""
    family = json.loads((archive / "truth.jsonl").read_text().splitlines()[0])["phi"][1]
    row = {"report_id": "x", "text": f"Seen by the team; patient {family} stable."}
    pq.write_table(pa.Table.from_pylist([row], schema=REPORTS), dataset / "reports" / "part-tampered.parquet")
    commit_files(dataset / "reports", "part-tampered.parquet")
    return family


def test_every_committed_batch_has_its_identifiers_stored(ingested) -> None:
    _, dataset, store = ingested
    batches = committed_batches(DatasetStore(str(dataset)))
    assert len(batches) > 2 and store.covered() == batches


def test_the_gate_refuses_a_dataset_whose_identifier_store_is_lost(ingested) -> None:
    archive, dataset, store = ingested
    shutil.rmtree(store.folder)
    _plant(archive, dataset)
    with pytest.raises(IdentifierStoreIncomplete) as refused:
        phi_gate(str(dataset))
    message = str(refused.value)
    assert "\n" not in message and "lacks the identifiers of" in message and "rerun `radpipe ingest`" in message
    assert json.loads((dataset / "_gate.json").read_text())["passed"] is False
    with pytest.raises(PhiGateFailed, match="lacks the identifiers"):  # and everything downstream refuses
        require_gate_passed(DatasetStore(str(dataset)))


def test_a_rerun_rebuilds_a_lost_store_from_the_sources(ingested, deid: Deidentifier) -> None:
    archive, dataset, store = ingested
    before = store.load()
    batches = store.covered()
    shutil.rmtree(store.folder)
    summary = serial_ingest(archive, dataset, deid)
    assert summary.identifier_batches_repaired == len(batches) and summary.identifier_batches_unrepaired == 0
    assert summary.instances_added == 0  # nothing is ingested twice
    assert store.load() == before and store.covered() == batches
    assert phi_gate(str(dataset)).records == 0
    family = _plant(archive, dataset)
    with pytest.raises(PhiGateFailed) as failure:
        phi_gate(str(dataset))
    assert "reports.text (1 rows: person name)" in str(failure.value) and family not in str(failure.value)


def test_batches_whose_sources_are_gone_stay_uncovered_and_the_gate_refuses(ingested, deid: Deidentifier) -> None:
    archive, dataset, store = ingested
    shutil.rmtree(store.folder)
    summary = serial_ingest(archive, dataset, deid, reports=False)  # the report files are not given this time
    assert summary.identifier_batches_unrepaired >= 1
    with pytest.raises(
        IdentifierStoreIncomplete, match=f"lacks the identifiers of {summary.identifier_batches_unrepaired} "
    ):
        phi_gate(str(dataset))


def test_every_text_column_of_a_scanned_table_is_scanned_or_named_as_radpipe_s_own() -> None:
    """A new column cannot slip past the gate unclassified."""
    from radpipe.dataset.schema import TABLES
    from radpipe.deid.gate import RADPIPE_CODES, RADPIPE_TEXT, SCANNED_TABLES, SOURCE_COLUMNS

    for table in SCANNED_TABLES:
        text = {
            f.name
            for f in TABLES[table]
            if pa.types.is_string(f.type) or (pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type))
        }
        named = [*SOURCE_COLUMNS.get(table, ()), *RADPIPE_TEXT.get(table, ()), *RADPIPE_CODES.get(table, ())]
        assert sorted(named) == sorted(text), table
