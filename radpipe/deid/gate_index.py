"""The PHI gate's index of earlier rows: per scanned file, the hashes a look-up of its text could touch.

An ingest brings new identifiers, and a new identifier can be in a row an earlier gate passed (a report
ingested before its images). Reading every row again costs the whole dataset at every ingest. Instead the gate
keeps, for each file it scanned, the probes of its text (`IdentifierIndex.probes`): every hash through which any
identifier store could find something in it. A new entry's hashes can match an old file only by meeting one of
its probes, so the gate reads again only the files whose probes meet them (and any file it has no probes for).

The index lives beside the identifier store (operator-only, under RADPIPE_HOME): keyed hashes, unreadable
without the key. One part per table per gate; parts whose files left the table are rewritten without them, and
many small parts are merged, so it stays the size of the tables it describes.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

INDEX_DIR = "gate-index"
META_KEY = b"radpipe.gate_index"  # Parquet metadata: JSON {"table", "rules", "files"}
MAX_PARTS = 16  # per table: more are merged into one at the end of a gate
SCHEMA = pa.schema([("file", pa.dictionary(pa.int32(), pa.string())), ("probe", pa.uint64())])


def probe_value(hex_hash: str) -> int:
    """A hash as the index keeps it: its first 64 bits (a chance collision only costs a file read again)."""
    return int(hex_hash[:16], 16)


@dataclass(frozen=True)
class Part:
    path: Path
    table: str
    rules: str
    files: frozenset[str]


class GateIndex:
    """The probes of one dataset's scanned files, as parts under the identifier store's folder.

    `rules` is the gate's rules digest: parts written under other rules are ignored (and dropped).
    """

    def __init__(self, folder: Path, rules: str) -> None:
        self.folder = folder / INDEX_DIR
        self.rules = rules

    def parts(self, table: str) -> list[Part]:
        if not self.folder.exists():
            return []
        found = []
        for path in sorted(self.folder.glob(f"{table}.*.parquet")):
            meta = json.loads((pq.read_metadata(path).metadata or {}).get(META_KEY, b"{}"))
            if meta.get("table") == table:
                found.append(Part(path, table, str(meta.get("rules")), frozenset(meta.get("files", []))))
        return found

    def indexed(self, table: str) -> set[str]:
        """The table's files (relative names) the index holds probes for under today's rules."""
        return {name for part in self.parts(table) if part.rules == self.rules for name in part.files}

    def matching(self, table: str, probes: Collection[int]) -> set[str]:
        """The table's files holding any of `probes`, read a row group at a time."""
        if not probes:
            return set()
        wanted = pa.array(sorted(probes), pa.uint64())
        found: set[str] = set()
        for part in self.parts(table):
            if part.rules != self.rules:
                continue
            parquet = pq.ParquetFile(part.path)
            for group in range(parquet.num_row_groups):
                rows = parquet.read_row_group(group)
                hit = rows.filter(pc.is_in(rows.column("probe"), value_set=wanted))
                if hit.num_rows:
                    found.update(pc.unique(hit.column("file").cast(pa.string())).to_pylist())
        return found

    def add(self, table: str, probes: dict[str, set[int]], rebuild: bool = False) -> Path | None:
        """Record the probes of files just scanned; the part written (see `writer`)."""
        writer = self.writer(table, rebuild)
        for name, found in probes.items():
            writer.add(name, found)
        return writer.close()

    def writer(self, table: str, rebuild: bool = False) -> PartWriter:
        """A part written a file at a time, as the gate scans. Files already indexed are skipped unless the index
        is being rebuilt (then every other part is dropped by `tidy`)."""
        return PartWriter(self, table, set() if rebuild else self.indexed(table))

    def tidy(self, table: str, current: Collection[str], keep_only: Collection[Path] | None = None) -> None:
        """Drop what no longer describes the table: other rules' parts, files that left it, and (after a full
        scan) every part but `keep_only`. Merges the parts when there are more than MAX_PARTS."""
        current = set(current)
        for leftover in self.folder.glob(f".{table}.*.tmp"):  # a part a killed gate was writing (under the lock)
            leftover.unlink(missing_ok=True)
        parts = self.parts(table)
        for part in parts:
            stale = part.rules != self.rules or (keep_only is not None and part.path not in keep_only)
            if stale or not part.files & current:
                part.path.unlink(missing_ok=True)
            elif not part.files <= current:
                self._write(table, _read(part, current).items())
                part.path.unlink(missing_ok=True)
        parts = [p for p in self.parts(table) if p.rules == self.rules]
        if len(parts) > MAX_PARTS:  # written first, then the parts it replaces: a kill leaves duplicates, not less
            merged: dict[str, set[int]] = {}
            for part in parts:
                merged.update(_read(part, current))
            self._write(table, merged.items())
            for part in parts:
                part.path.unlink(missing_ok=True)

    def _write(self, table: str, probes: Iterable[tuple[str, set[int]]]) -> Path | None:
        writer = PartWriter(self, table, set())
        for name, found in probes:
            writer.add(name, found)
        return writer.close()


class PartWriter:
    """Streams one part: (file, probe) rows in row groups, the files it covers named in its footer at the end."""

    ROWS = 1_000_000  # probes buffered before a row group is written

    def __init__(self, index: GateIndex, table: str, skip: set[str]) -> None:
        self.index, self.table, self.skip = index, table, skip
        self.files: dict[str, None] = {}  # a large file may come in several parts
        self.names: list[str] = []
        self.values: list[int] = []
        self.path = index.folder / f"{table}.{secrets.token_hex(8)}.parquet"
        self.temporary = index.folder / f".{self.path.name}.tmp"
        self.parquet: pq.ParquetWriter | None = None

    def add(self, name: str, probes: set[int]) -> None:
        if name in self.skip:
            return
        self.files[name] = None
        self.names.extend([name] * len(probes))
        self.values.extend(probes)
        if len(self.values) >= self.ROWS:
            self._flush()

    def close(self) -> Path | None:
        """Finish the part (whole or absent: written aside, then renamed); None when it covers no file."""
        if not self.files:
            return None
        self._flush()
        assert self.parquet is not None
        meta = {"table": self.table, "rules": self.index.rules, "files": sorted(self.files)}
        self.parquet.add_key_value_metadata({META_KEY: json.dumps(meta).encode()})
        self.parquet.close()
        self.temporary.replace(self.path)
        return self.path

    def _flush(self) -> None:
        if self.parquet is None:
            self.index.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.index.folder, 0o700)
            descriptor = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(descriptor)
            self.parquet = pq.ParquetWriter(self.temporary, SCHEMA)
        names = pa.array(self.names, pa.string()).dictionary_encode()
        self.parquet.write_table(pa.table({"file": names, "probe": pa.array(self.values, pa.uint64())}, schema=SCHEMA))
        self.names, self.values = [], []


def _read(part: Part, files: set[str]) -> dict[str, set[int]]:
    """A part's probes of the files among `files`."""
    rows = pq.read_table(part.path)
    found: dict[str, set[int]] = {name: set() for name in part.files & files}  # a file may have no probe
    for name, probe in zip(
        rows.column("file").cast(pa.string()).to_pylist(), rows.column("probe").to_pylist(), strict=True
    ):
        if name in files:
            found.setdefault(name, set()).add(probe)
    return found
