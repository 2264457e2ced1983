"""The commit protocol survives a crash at any point (unit level, no Dask)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.dataset.store import COMMIT_FILE, STAGING, DatasetStore, commit, recover


def _stage(store: DatasetStore, batch: str, rows: int) -> dict[str, str]:
    files = {}
    for table in ("quarantine", "_ledger"):
        path = store.path(STAGING, batch, f"{table}.parquet")
        store.fs.makedirs(store.path(STAGING, batch), exist_ok=True)
        pq.write_table(pa.table({"source_key": [f"{batch}-{i}" for i in range(rows)]}), path)
        files[table] = path
    return files


def test_committed_batch_is_finished_and_uncommitted_dropped(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    done = _stage(store, "b1", 3)
    commit(store, "b1", done)
    # b2 crashed after writing its manifest, before any rename.
    crashed = _stage(store, "b2", 2)
    moves = [
        [crashed["quarantine"], store.path("quarantine", "part-b2.parquet")],
        [crashed["_ledger"], store.path("_ledger", "part-b2.parquet")],
    ]
    (tmp_path / STAGING / "b2" / COMMIT_FILE).write_text(json.dumps({"batch_id": "b2", "moves": moves}))
    # b3 crashed while its worker was still writing.
    _stage(store, "b3", 5)
    assert recover(store) == (1, 1)
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [
        "part-b1.parquet",
        "part-b2.parquet",
    ]
    assert not (tmp_path / STAGING).exists() or not any((tmp_path / STAGING).iterdir())
    assert recover(store) == (0, 0)  # idempotent


def test_recover_after_partial_moves_does_not_double(tmp_path) -> None:
    store = DatasetStore(str(tmp_path))
    files = _stage(store, "b1", 3)
    moves = [
        [files["quarantine"], store.path("quarantine", "part-b1.parquet")],
        [files["_ledger"], store.path("_ledger", "part-b1.parquet")],
    ]
    (tmp_path / STAGING / "b1" / COMMIT_FILE).write_text(json.dumps({"batch_id": "b1", "moves": moves}))
    store.fs.makedirs(store.path("quarantine"), exist_ok=True)
    store.fs.mv(files["quarantine"], moves[0][1])  # the crash came after the first rename
    recover(store)
    assert store.read_table("quarantine").num_rows == 3
    assert store.read_table("_ledger").num_rows == 3
