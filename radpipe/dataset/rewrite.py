"""Remove rows from published tables atomically: staged copies without them, then one commit of renames."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radpipe.dataset.commit import Move
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import STAGING, THREADS, DatasetStore, filter_file, write_options

# table -> (key column, keys to drop)
RemovalPlan = dict[str, tuple[str, set[str]]]


def stage_removals(store: DatasetStore, plan: RemovalPlan, batch_id: str) -> tuple[list[Move], dict[str, int]]:
    """Stage a copy of every file holding a row to drop, without those rows; (moves for commit_moves, rows removed).

    Nothing is published until the caller commits the moves (radpipe.dataset.commit.commit_moves).
    """
    moves: list[Move] = []
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
            moves.append((staged if kept else None, store.relative(file)))  # None: the file goes, none replaces it
    return moves, removed


def purge_history(store: DatasetStore, plan: RemovalPlan) -> int:
    """Delete every data file that only older table versions name and that holds a row to drop; files deleted.

    Run after the removal's own commit (with purge): then no version of any table can be read back with those
    rows. A version that named a deleted file refuses to be read, with a one-line error, rather than return
    other rows without them.
    """
    deleted = 0
    for table, (column, drop) in plan.items():
        if not drop:
            continue
        current = set(store.table_files(table))
        for file in store.physical_files(table):
            if file not in current and _holds_any(store, file, column, drop):
                store.fs.rm(file)
                deleted += 1
    return deleted


def _holds_any(store: DatasetStore, file: str, column: str, values: set[str]) -> bool:
    with store.fs.open(file, "rb") as fh:
        parquet = pq.ParquetFile(fh)
        if column not in parquet.schema_arrow.names:
            return False
        wanted = pa.array(sorted(values), pa.string())
        for index in range(parquet.num_row_groups):
            keys = parquet.read_row_group(index, columns=[column], use_threads=THREADS).column(column)
            if pc.any(pc.is_in(keys, value_set=wanted)).as_py():
                return True
    return False


def stage_rewrite(
    store: DatasetStore, table: str, batch_id: str, change: Callable[[pa.Table], pa.Table | None]
) -> list[Move]:
    """Stage a rewrite of each file of `table` that `change` alters (it returns None for a file left as is)."""
    moves: list[Move] = []
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
