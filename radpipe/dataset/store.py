"""Where a dataset lives and how its tables are read: every table is a Delta table (radpipe.dataset.delta).

A batch writes every table file it produces under `_staging/<batch>/` (StagedTableWriter); radpipe.dataset.commit
publishes it. Reads take a table's files from its Delta snapshot (the latest, or the version a store is pinned
to), never from a folder listing: a data file no commit names (a crashed batch's, a removed one kept for time
travel) is not part of the table.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from radpipe.dataset.delta import files as delta_files
from radpipe.dataset.delta import open_table
from radpipe.dataset.schema import PAYLOAD_COLUMNS, TABLES
from radpipe.errors import SourceError

STAGING = "_staging"
VERSIONS_DIR = "_versions"  # dataset_version -> the table versions it names (radpipe.quality.status)
_VERSION = re.compile(r"[0-9a-f]{16}")
# Where delta-rs can keep a table (fsspec's names for them).
DELTA_PROTOCOLS = ("file", "local", "s3", "s3a", "gs", "gcs", "abfs", "az", "abfss")
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


def split_version(uri: str) -> tuple[str, str | None]:
    """`DATASET@VERSION` -> (DATASET, VERSION); a plain dataset -> (DATASET, None)."""
    base, at, version = uri.rpartition("@")
    if at and _VERSION.fullmatch(version):
        return base, version
    return uri, None


class DatasetStore:
    """A dataset root on any fsspec filesystem, read at its latest table versions or pinned to `versions`."""

    def __init__(self, uri: str, versions: dict[str, int] | None = None) -> None:
        """`uri` is a dataset, or `DATASET@VERSION`: the table versions a dataset_version recorded (read-only)."""
        uri, version = split_version(uri)
        self.uri = uri
        self.versions = versions  # table -> Delta version; a table not named there did not exist yet
        self._loaded: dict[str, DeltaTable | None] = {}
        self.fs: AbstractFileSystem
        try:
            # No listings cache: an object store's client would otherwise keep serving the folder listings it
            # saw first, and miss what another process (a worker, a concurrent run) committed since.
            self.fs, self.root = url_to_fs(uri, use_listings_cache=False)
        except (ValueError, ImportError) as exc:  # an unknown protocol, or its package not installed
            raise SourceError(f"cannot open dataset {uri!r}: {exc}") from None
        if self.protocol not in DELTA_PROTOCOLS:
            raise SourceError(
                f"a dataset must live where Delta Lake can write it (a local path, s3://, gs://, az://), not "
                f"{self.protocol}://"
            )

        if version is not None:
            self.versions = self._recorded_versions(version)
        self.version = version

    def _recorded_versions(self, version: str) -> dict[str, int]:
        path = self.path(VERSIONS_DIR, f"{version}.json")
        if not self.fs.exists(path):
            raise SourceError(f"{self.uri} has no dataset version {version} (its versions are in {VERSIONS_DIR}/)")
        with self.fs.open(path, "r") as fh:
            return {table: int(number) for table, number in json.load(fh).items()}

    @property
    def protocol(self) -> str:
        return self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def relative(self, path: str) -> str:
        """A path inside the dataset, relative to its root (manifests survive a moved dataset)."""
        return posixpath.relpath(path, self.root)

    def table_uri(self, table: str) -> str:
        """The table's location as delta-rs takes it (a local path, or the store's URL)."""
        folder = self.path(table)
        return folder if self.protocol in ("file", "local") else f"{self.protocol}://{folder.lstrip('/')}"

    def snapshot(self, table: str) -> DeltaTable | None:
        """The table's Delta snapshot this store reads (None: no such table, or not yet at the pinned versions).

        A loaded table is kept and brought up to date by reading only the log entries added since (one
        listing), so a run that commits a thousand batches does not read the whole log a thousand times.
        """
        if self.versions is not None:
            if table not in self.versions:
                return None
            if table not in self._loaded:
                self._loaded[table] = open_table(self.table_uri(table), self.versions[table])
            return self._loaded[table]
        loaded = self._loaded.get(table)
        if loaded is None:  # not loaded yet, or no table yet (not remembered: a commit may create it)
            loaded = open_table(self.table_uri(table))
            if loaded is not None:
                self._loaded[table] = loaded
        else:
            loaded.update_incremental()
        return loaded

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": {}}  # loaded tables stay in their process

    def table_version(self, table: str) -> int:
        """The table's Delta version this store reads; -1 when it has none."""
        snapshot = self.snapshot(table)
        return -1 if snapshot is None else int(snapshot.version())

    def table_files(self, table: str) -> list[str]:
        """The table's data files (filesystem paths), from its snapshot."""
        snapshot = self.snapshot(table)
        if snapshot is None:
            return []
        paths = [self.path(table, name) for name in delta_files(snapshot)]
        if self.versions is not None:
            gone = [p for p in paths if not self.fs.exists(p)]
            if gone:
                raise SourceError(
                    f"{table}/ at version {self.versions[table]} can no longer be read: {len(gone)} of its files "
                    "were removed since (an erasure, a withheld record, or vacuum past the retention period)"
                )
        return paths

    def physical_files(self, table: str) -> list[str]:
        """Every data file in the table's folder: the current ones, those only older versions name, orphans."""
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
        self,
        table: str,
        columns: list[str] | None = None,
        where: tuple[str, Collection[str]] | None = None,
        files: Collection[str] | None = None,
        where_any: Sequence[tuple[str, Collection[str]]] | None = None,
    ) -> Iterator[RowGroup]:
        """A table one row group at a time (bounded memory), in file order.

        `where=(column, values)` keeps only the rows whose `column` is one of `values` (a group none of whose rows
        match is skipped after reading that column alone); `where_any` a list of them, rows matching any; `files`
        only the table's files named there. A file written before a column existed yields its groups without that
        column.
        """
        conditions = [where] if where is not None else where_any
        if conditions is not None:
            conditions = [(column, values) for column, values in conditions if values]
            if not conditions:
                return
        matchers = [(column, _matcher(values)) for column, values in conditions or []]
        for file in self.table_files(table):
            if files is not None and file not in files:
                continue
            with self.fs.open(file, "rb") as fh:
                parquet = pq.ParquetFile(fh)
                names = parquet.schema_arrow.names
                present = None if columns is None else [c for c in columns if c in names]
                for index in range(parquet.num_row_groups):
                    if not matchers:
                        yield RowGroup(file, index, parquet.read_row_group(index, columns=present, use_threads=THREADS))
                        continue
                    keys = parquet.read_row_group(
                        index, columns=sorted({c for c, _ in matchers if c in names}), use_threads=THREADS
                    )
                    mask = None
                    for column, matches in matchers:
                        if column in keys.column_names:
                            hit = pc.fill_null(matches(keys[column]), False)
                            mask = hit if mask is None else pc.or_(mask, hit)
                    if mask is None or not pc.any(mask).as_py():
                        continue
                    rows = parquet.read_row_group(index, columns=present, use_threads=THREADS)
                    yield RowGroup(file, index, rows.filter(mask))

    def count_rows(self, table: str) -> int:
        """Rows of a table, from the files' footers (no data read)."""
        total = 0
        for file in self.table_files(table):
            with self.fs.open(file, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        return total


# Up to this many values, Arrow hashes them for every row group; more (a rerun's whole listing against the
# ledger) are hashed once, into a Python set, instead of once per row group.
ARROW_LOOKUP_VALUES = 50_000


def _matcher(values: Collection[str]) -> Callable[[pa.ChunkedArray], pa.Array]:
    """A function giving, for a column of keys, the mask of those that are among `values`."""
    if len(values) <= ARROW_LOOKUP_VALUES:
        value_set = pa.array(list(values), pa.string())
        return lambda keys: pc.is_in(keys, value_set=value_set)
    wanted = values if isinstance(values, (set, frozenset)) else set(values)
    return lambda keys: pa.array([key in wanted for key in keys.to_pylist()], pa.bool_())


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
    # table -> key -> source key of the rows the dataset held when the run began with one of `keys`' keys
    # (looked up by the worker; a table missing here is looked up by the driver)
    held: dict[str, dict[str, str]] = field(default_factory=dict)


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
