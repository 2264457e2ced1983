"""Remove rows from published tables atomically: staged copies without them, then one commit of renames."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import STAGING, THREADS, DatasetStore, filter_file, write_options

# table -> (key column, keys to drop)
RemovalPlan = dict[str, tuple[str, set[str]]]


def stage_removals(
    store: DatasetStore, plan: RemovalPlan, batch_id: str
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Stage a copy of every file holding a row to drop, without those rows; (moves for commit_moves, rows removed).

    Nothing is published until the caller commits the moves (radpipe.dataset.store.commit_moves).
    """
    moves: list[tuple[str, str]] = []
    removed: dict[str, int] = {}
    for table, (column, drop) in plan.items():
        removed[table] = 0
        for file in store.table_files(table) if drop else ():
            staged = store.path(STAGING, batch_id, f"{table}-{len(moves)}.parquet")
            store.fs.makedirs(store.path(STAGING, batch_id), exist_ok=True)
            before = rows_in(store, file)
            kept = filter_file(store, file, staged, table, column, drop)
            if kept == before:
                store.fs.rm(staged)
                continue
            removed[table] += before - kept
            moves.append((staged, store.relative(file)))
    return moves, removed


def stage_rewrite(
    store: DatasetStore, table: str, batch_id: str, change: Callable[[pa.Table], pa.Table | None]
) -> list[tuple[str, str]]:
    """Stage a rewrite of each file of `table` that `change` alters (it returns None for a file left as is)."""
    moves: list[tuple[str, str]] = []
    for file in store.table_files(table):
        with store.fs.open(file, "rb") as fh:
            changed = change(pq.read_table(fh, use_threads=THREADS))
        if changed is None:
            continue
        staged = store.path(STAGING, batch_id, f"{table}-rewrite-{len(moves)}.parquet")
        store.fs.makedirs(store.path(STAGING, batch_id), exist_ok=True)
        with store.fs.open(staged, "wb") as fh:
            pq.write_table(changed.cast(TABLES[table]), fh, **write_options(TABLES[table]))
        moves.append((staged, store.relative(file)))
    return moves


def rows_in(store: DatasetStore, file: str) -> int:
    with store.fs.open(file, "rb") as fh:
        return int(pq.ParquetFile(fh).metadata.num_rows)
