"""Where a dataset lives, how batches are staged, and the atomic commit that publishes them.

A batch writes every table file it produces under `_staging/<batch>/`. Publishing writes a
`COMMIT` manifest (atomically: temp file, then rename), then renames each staged file into its
table folder, the ledger file last, then removes the staging folder. `recover()` at the start of
every run finishes any batch whose manifest exists and deletes any that has none, so a kill -9
at any point leaves neither partial nor doubled rows once the next run starts.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from radpipe.dataset.schema import PAYLOAD_COLUMNS, TABLES
from radpipe.errors import RadpipeError, SourceError

STAGING = "_staging"
COMMIT_FILE = "COMMIT"
# Row groups of ~128 MB keep readers' memory bounded; batches are sized for 0.5-1 GB files.
ROW_GROUP_BYTES = 128 * 1024**2
# Every read here goes through a Python file object (fsspec), so Arrow holds Python buffers. With Arrow's thread
# pool, a pool thread may drop the last of them just after the read returns; if the interpreter is shutting
# down by then, the thread cannot take the GIL and the process aborts ("terminate called without an active
# exception", apache/arrow#34314): `radpipe summary` exited 134 in 4 of 30 runs. Reads stay on the calling thread.
THREADS = False


@dataclass(frozen=True)
class RowGroup:
    """One row group of a table file: its rows, with the columns asked for that the file has."""

    file: str
    index: int
    rows: pa.Table

    @property
    def name(self) -> str:
        return f"{posixpath.basename(self.file)}#{self.index}"


class DatasetStore:
    """A dataset root on any fsspec filesystem."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs: AbstractFileSystem
        try:
            # No listings cache: an object store's client would otherwise keep serving the folder listings it
            # saw first, and miss what another process (a worker, a concurrent run) committed since.
            self.fs, self.root = url_to_fs(uri, use_listings_cache=False)
        except (ValueError, ImportError) as exc:  # an unknown protocol, or its package not installed
            raise SourceError(f"cannot open dataset {uri!r}: {exc}") from None

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def relative(self, path: str) -> str:
        """A path inside the dataset, relative to its root (manifests survive a moved dataset)."""
        return posixpath.relpath(path, self.root)

    def table_files(self, table: str) -> list[str]:
        folder = self.path(table)
        if not self.fs.exists(folder):
            return []
        return sorted(p for p in self.fs.ls(folder, detail=False) if p.endswith(".parquet"))

    def read_table(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """All rows of a table (only `columns`), or an empty table with its schema."""
        schema = TABLES[table]
        files = self.table_files(table)
        if not files:
            return (
                schema.empty_table() if columns is None else pa.schema([schema.field(c) for c in columns]).empty_table()
            )
        parts = []
        for file in files:
            with self.fs.open(file, "rb") as fh:
                parts.append(pq.read_table(fh, columns=columns, use_threads=THREADS))
        return pa.concat_tables(parts, promote_options="default")

    def iter_row_groups(
        self, table: str, columns: list[str] | None = None, where: tuple[str, Collection[str]] | None = None
    ) -> Iterator[RowGroup]:
        """A table one row group at a time (bounded memory), in file order.

        `where=(column, values)` keeps only the rows whose `column` is one of `values`. A file written before a
        column existed yields its groups without that column.
        """
        wanted = None if where is None else pa.array(list(where[1]), pa.string())
        for file in self.table_files(table):
            with self.fs.open(file, "rb") as fh:
                parquet = pq.ParquetFile(fh)
                present = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
                for index in range(parquet.num_row_groups):
                    rows = parquet.read_row_group(index, columns=present, use_threads=THREADS)
                    if where is not None:
                        rows = rows.filter(pc.is_in(rows[where[0]], value_set=wanted))
                    yield RowGroup(file, index, rows)

    def count_rows(self, table: str) -> int:
        """Rows of a table, from the files' footers (no data read)."""
        total = 0
        for file in self.table_files(table):
            with self.fs.open(file, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        return total

    def write_whole_table(self, table: str, data: pa.Table, name: str = "part-0.parquet") -> None:
        """Replace a derived table (studies/) atomically: write aside, then rename over."""
        self.stream_whole_table(table, [data], data.schema, name)

    def stream_whole_table(
        self, table: str, parts: Iterable[pa.Table], schema: pa.Schema, name: str = "part-0.parquet"
    ) -> None:
        """Replace a derived table from parts written as they come (bounded memory), atomically."""
        folder = self.path(table)
        self.fs.makedirs(folder, exist_ok=True)
        temporary = self.path(table, f".{name}.tmp")
        with self.fs.open(temporary, "wb") as fh, pq.ParquetWriter(fh, schema, compression="zstd") as writer:
            for part in parts:
                writer.write_table(part)
        self.fs.mv(temporary, self.path(table, name))  # the new file is in place before any old one goes
        for old in self.table_files(table):
            if posixpath.basename(old) != name:
                self.fs.rm(old)


def write_options(schema: pa.Schema) -> dict[str, Any]:
    plain = [f.name for f in schema if f.name not in PAYLOAD_COLUMNS]
    return {
        "compression": {f.name: ("none" if f.name in PAYLOAD_COLUMNS else "zstd") for f in schema},
        "use_dictionary": [f.name for f in schema if f.name in plain and pa.types.is_string(f.type)],
        "write_statistics": plain,  # min/max of pixel blobs would bloat the footer for nothing
    }


class StagedTableWriter:
    """Streams rows of one table into a staged Parquet file, a row group per ~ROW_GROUP_BYTES."""

    def __init__(self, store: DatasetStore, batch_id: str, table: str) -> None:
        self.store, self.table, self.schema = store, table, TABLES[table]
        self.staged = store.path(STAGING, batch_id, f"{table}.parquet")
        self.rows: list[dict[str, Any]] = []
        self.buffered_bytes = 0
        self.written = 0
        self._writer: pq.ParquetWriter | None = None
        self._file: Any = None

    def add(self, row: dict[str, Any], batch_id: str) -> None:
        row["batch_id"] = batch_id if "batch_id" in self.schema.names else None
        self.rows.append(row)
        self.buffered_bytes += len(row.get("pixels") or b"") + 256
        if self.buffered_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        if self._writer is None:
            self.store.fs.makedirs(posixpath.dirname(self.staged), exist_ok=True)
            self._file = self.store.fs.open(self.staged, "wb")
            self._writer = pq.ParquetWriter(self._file, self.schema, **write_options(self.schema))
        table = pa.Table.from_pylist(self.rows, schema=self.schema)
        self._writer.write_table(table, row_group_size=len(self.rows))
        self.written += len(self.rows)
        self.rows, self.buffered_bytes = [], 0

    def discard(self) -> None:
        """Drop everything written or buffered so far."""
        self.rows, self.buffered_bytes = [], 0
        if self._writer is not None:
            self._writer.close()
            self._file.close()
            self.store.fs.rm(self.staged)
            self._writer = None

    def close(self) -> str | None:
        """Finish the file; the staged path, or None when the table got no rows."""
        self._flush()
        if self._writer is None:
            return None
        self._writer.close()
        self._file.close()
        return self.staged


@dataclass
class StagedBatch:
    """What a worker staged: table -> staged file, ledger rows, and keys the driver de-duplicates on."""

    batch_id: str
    files: dict[str, str] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    # (table, key column) -> [(key, source_key)] for rows that may duplicate earlier batches
    keys: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    input_bytes: int = 0
    # Keyed hashes of the source identifiers this batch saw (for the PHI gate; never clear values).
    phi: dict[str, str] = field(default_factory=dict)  # hash -> kind of identifier


class StagingNotVisible(RadpipeError):
    """Workers staged files the driver cannot see: they do not share the dataset's storage."""


def commit(store: DatasetStore, batch_id: str, files: dict[str, str]) -> None:
    """Publish a staged batch atomically (see the module docstring)."""
    moves = []
    for key, staged in files.items():
        table, _, suffix = key.partition("#")  # "quarantine#dedup": a second file for one table
        name = f"part-{batch_id}-{suffix}.parquet" if suffix else f"part-{batch_id}.parquet"
        moves.append((staged, posixpath.join(table, name)))
    commit_moves(store, batch_id, moves)


def commit_moves(store: DatasetStore, batch_id: str, moves: list[tuple[str, str]]) -> None:
    """Rename staged files (absolute) onto dataset paths (relative; existing files are replaced)."""
    missing = [final for staged, final in moves if not store.fs.exists(staged)]
    if missing:
        raise StagingNotVisible(
            f"batch files staged by a Dask worker are not visible here ({', '.join(sorted(missing))}): with "
            "RADPIPE_DASK_ADDRESS the dataset must be on storage that the workers and this machine share"
        )
    ordered = sorted(
        ([store.relative(staged), final] for staged, final in moves),
        key=lambda move: move[1].startswith(("_ledger/", "_erasures/", "_withheld/")),
    )  # records move last
    manifest = store.path(STAGING, batch_id, COMMIT_FILE)
    temporary = manifest + ".tmp"
    with store.fs.open(temporary, "w") as fh:
        json.dump({"batch_id": batch_id, "moves": ordered}, fh)
    store.fs.mv(temporary, manifest)
    _apply(store, batch_id, ordered)


def _apply(store: DatasetStore, batch_id: str, moves: Iterable[list[str]]) -> None:
    """Do the renames a manifest lists; each is done already, or still to do, never neither."""
    for staged, final in moves:
        source, target = store.path(staged), store.path(final)
        if store.fs.exists(source):
            store.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            store.fs.mv(source, target)
        elif not store.fs.exists(target):
            raise RuntimeError(f"commit of batch {batch_id} is broken: {staged} and {final} are both missing")
    store.fs.rm(store.path(STAGING, batch_id), recursive=True)


def recover(store: DatasetStore) -> tuple[int, int]:
    """Finish committed batches and drop uncommitted ones; (finished, dropped). Call under the lock."""
    staging = store.path(STAGING)
    if not store.fs.exists(staging):
        return 0, 0
    finished = dropped = 0
    for folder in store.fs.ls(staging, detail=False):
        manifest = posixpath.join(folder, COMMIT_FILE)
        if store.fs.exists(manifest):
            with store.fs.open(manifest, "r") as fh:
                data = json.load(fh)
            _apply(store, data["batch_id"], data["moves"])
            finished += 1
            continue
        # An object store (or a filer behind one) may keep an emptied prefix listed: nothing to roll back there.
        held = _holds_files(store, folder)
        store.fs.rm(folder, recursive=True)
        dropped += held
    return finished, dropped


def _holds_files(store: DatasetStore, folder: str) -> bool:
    """Whether a staging folder holds any file (an emptied prefix may still list itself for a while)."""
    if not store.fs.isdir(folder):
        return True
    entries = store.fs.find(folder, withdirs=False, detail=True)
    return any(
        info.get("type") != "directory" and path.rstrip("/") != folder.rstrip("/") for path, info in entries.items()
    )


def rewrite_without(store: DatasetStore, staged: str, table: str, column: str, drop: set[str]) -> int:
    """Drop rows whose `column` is in `drop` from a staged file, row group by row group; rows kept."""
    kept = filter_file(store, staged, staged + ".filtered", table, column, drop)
    store.fs.mv(staged + ".filtered", staged)
    return kept


def filter_file(
    store: DatasetStore, source_path: str, target_path: str, table: str, column: str, drop: set[str]
) -> int:
    """Copy a table file without the rows whose `column` is in `drop`; rows kept."""
    kept = 0
    with store.fs.open(source_path, "rb") as source, store.fs.open(target_path, "wb") as target:
        reader = pq.ParquetFile(source)
        writer = pq.ParquetWriter(target, TABLES[table], **write_options(TABLES[table]))
        for index in range(reader.num_row_groups):
            group = reader.read_row_group(index, use_threads=THREADS)
            mask = pa.array([value not in drop for value in group.column(column).to_pylist()])
            group = group.filter(mask)
            if group.num_rows:
                writer.write_table(group)
                kept += group.num_rows
        writer.close()
    return kept
