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


def history_files(store: DatasetStore, plan: RemovalPlan, anywhere: tuple[str, set[str]] | None = None) -> list[str]:
    """Data files (relative paths) that only older table versions name and that hold a row to drop.

    A row to drop is one whose plan column holds a planned key, or (`anywhere`) whose column of that name holds
    one of its values in any table. Listed before the removal commits and purged with it (commit_moves'
    `purge_also`), so no version of any table can be read back with those rows, even after a crash.
    """
    found: list[str] = []
    for table, (column, drop) in plan.items():
        matchers = [(column, drop)] if drop else []
        matchers += [anywhere] if anywhere and anywhere[1] else []
        if not matchers:
            continue
        current = set(store.table_files(table))
        for file in store.physical_files(table):
            if file not in current and any(_holds_any(store, file, c, values) for c, values in matchers):
                found.append(store.relative(file))
    return found


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
