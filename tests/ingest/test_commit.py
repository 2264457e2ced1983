"""The commit protocol survives a crash at any point (unit level, no Dask)."""

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from radpipe.dataset import delta
from radpipe.dataset.commit import commit, commit_moves, recover, replace_table, write_manifest
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import STAGING, DatasetStore


def _stage(store: DatasetStore, batch: str, rows: int) -> dict[str, str]:
    files = {}
    for table in ("quarantine", "_ledger"):
        path = store.path(STAGING, batch, f"{table}.parquet")
        store.fs.makedirs(store.path(STAGING, batch), exist_ok=True)
        pq.write_table(pa.table({"source_key": [f"{batch}-{i}" for i in range(rows)]}), path)
        files[table] = path
    return files


def _moves(batch: str, files: dict[str, str]) -> list[tuple[str | None, str]]:
    return [(files[t], f"{t}/part-{batch}.parquet") for t in ("quarantine", "_ledger")]


def test_committed_batch_is_finished_and_uncommitted_dropped(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    commit(store, "b1", _stage(store, "b1", 3))
    write_manifest(store, "b2", _moves("b2", _stage(store, "b2", 2)))  # b2 crashed after its manifest
    _stage(store, "b3", 5)  # b3 crashed while its worker was still writing
    assert recover(store) == (1, 1)
    assert [p.rsplit("/", 1)[1] for p in store.table_files("quarantine")] == ["part-b1.parquet", "part-b2.parquet"]
    assert store.read_table("quarantine").num_rows == 5
    assert not (tmp_path / STAGING).exists() or not any((tmp_path / STAGING).iterdir())
    assert recover(store) == (0, 0)  # idempotent
    assert DeltaTable(str(tmp_path / "quarantine")).version() == 2  # create, b1, b2: nothing committed twice


def test_recover_after_a_partial_commit_does_not_double(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    plan = write_manifest(store, "b1", _moves("b1", _stage(store, "b1", 3)))
    # The crash came after the first table's Delta commit, before the ledger's.
    first = plan["tables"][0]
    assert first["table"] == "quarantine"  # data tables commit before the record tables
    staged, final = first["adds"][0]
    store.fs.makedirs(store.path("quarantine"), exist_ok=True)
    store.fs.mv(store.path(staged), store.path(final))
    delta.commit(store.table_uri("quarantine"), TABLES["quarantine"], "b1", [delta.DataFile("part-b1.parquet", 1, 3)])
    recover(store)
    assert store.read_table("quarantine").num_rows == 3
    assert store.read_table("_ledger").num_rows == 3


def test_an_uncommitted_data_file_in_a_table_folder_is_not_read(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    commit(store, "b1", _stage(store, "b1", 3))
    pq.write_table(pa.table({"source_key": ["stray"]}), tmp_path / "quarantine" / "part-stray.parquet")
    assert store.read_table("quarantine").num_rows == 3
    assert len(store.physical_files("quarantine")) == 2


def test_a_replaced_file_stays_for_older_versions_unless_purged(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    commit(store, "b1", _stage(store, "b1", 3))
    old = store.relative(store.table_files("quarantine")[0])
    staged = store.path(STAGING, "b2", "q.parquet")
    store.fs.makedirs(store.path(STAGING, "b2"), exist_ok=True)
    pq.write_table(pa.table({"source_key": ["b1-0"]}), staged)
    commit_moves(store, "b2", [(staged, old)])
    assert store.read_table("quarantine")["source_key"].to_pylist() == ["b1-0"]
    assert DatasetStore(str(tmp_path), versions={"quarantine": 1}).read_table("quarantine").num_rows == 3
    replacement = store.table_files("quarantine")[0]
    commit_moves(store, "b3", [(None, store.relative(replacement))], purge=True)
    assert store.read_table("quarantine").num_rows == 0
    assert not store.fs.exists(replacement)  # purged at once
    assert store.fs.exists(store.path(old))  # replaced without purge: kept for version 1


def test_replacing_a_derived_table_with_the_same_content_commits_nothing(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    data = pa.Table.from_pylist([], schema=TABLES["curation"])
    replace_table(store, "curation", data)
    version = store.table_version("curation")
    replace_table(store, "curation", data)
    assert store.table_version("curation") == version


def test_a_format_1_manifest_left_by_a_crash_is_finished_as_delta_commits(tmp_path) -> None:
    import json

    from radpipe.dataset.commit import COMMIT_FILE

    store = DatasetStore(str(tmp_path))
    files = _stage(store, "b1", 3)
    moves = [[store.relative(files[t]), f"{t}/part-b1.parquet"] for t in ("quarantine", "_ledger")]
    (tmp_path / STAGING / "b1" / COMMIT_FILE).write_text(json.dumps({"batch_id": "b1", "moves": moves}))
    assert recover(store) == (1, 0)
    assert store.read_table("quarantine").num_rows == 3 and store.read_table("_ledger").num_rows == 3
