"""The PHI gate's store of source identifiers: keyed hashes, outside the dataset, operator-only.

Each entry is a Parquet file of hashes that names, in its metadata, the ingest batches it covers. A
batch's entry is written *before* the batch commits, so a committed batch always has its identifiers
here, whenever the run is killed. The gate refuses to pass while a committed batch has no entry
(radpipe/deid/gate.py), and the next ingest rebuilds missing entries from the sources
(radpipe/ingest/identifier_repair.py). At the end of a run the batch entries are merged into one.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BATCHES_KEY = b"radpipe.batches"  # Parquet metadata: JSON list of the batch ids an entry covers
BATCH_PREFIX = "batch-"  # one batch's entry, written before its commit
MERGED_PREFIX = "run-"  # the entries of committed batches, merged at the end of a run
# Entries written before batches were recorded ("part-<run>.parquet") still hold hashes but cover no batch:
# the gate refuses until the next ingest rebuilds them from the sources.


@dataclass(frozen=True)
class Entry:
    path: Path
    batches: frozenset[str]


class IdentifierStore:
    """Keyed hashes of one dataset's source identifiers, under RADPIPE_HOME/phi-gate/<dataset id>/."""

    def __init__(self, home: Path, dataset_id: str) -> None:
        self.folder = home / "phi-gate" / dataset_id

    def add_batch(self, batch_id: str, hashes: dict[str, str]) -> None:
        """Record one batch's identifiers (also none: the entry says the batch was seen); before its commit."""
        self._write(f"{BATCH_PREFIX}{batch_id}.parquet", hashes, [batch_id])

    def add(self, hashes: dict[str, str], batches: Iterable[str], name: str) -> None:
        """Record identifiers covering several batches at once (a repair)."""
        self._write(f"{MERGED_PREFIX}{name}.parquet", hashes, sorted(batches))

    def entries(self) -> list[Entry]:
        if not self.folder.exists():
            return []
        found = []
        for path in sorted(self.folder.glob("*.parquet")):
            metadata = pq.read_schema(path).metadata or {}
            batches = json.loads(metadata[BATCHES_KEY]) if BATCHES_KEY in metadata else []
            found.append(Entry(path, frozenset(batches)))
        return found

    def covered(self) -> set[str]:
        """The batches whose identifiers the store holds."""
        return {batch for entry in self.entries() for batch in entry.batches}

    def listing(self) -> list[str]:
        """Each entry as "name:size:mtime": entries are written once (a temporary file renamed), so an unchanged
        listing means unchanged hashes without reading them (10^6 of them take seconds to load)."""
        return [_listed(entry) for entry in self.entries()]

    def load(self, listed: Collection[str] | None = None) -> dict[str, str]:
        """Hash -> the kind of identifier it came from (radpipe/deid/identifiers.py, PhiKind); of the entries in
        `listed` (as `listing` names them) when given."""
        found: dict[str, str] = {}
        for entry in self.entries():
            if listed is None or _listed(entry) in listed:
                found.update(_read(entry.path))
        return found

    def merge_batches(self, committed: set[str], name: str) -> None:
        """Merge the batch entries of committed batches into one; drop those of batches that never committed.

        The merged entry is in place before any batch entry goes, so a kill leaves a superset, never less.
        """
        batch_entries = [e for e in self.entries() if e.path.name.startswith(BATCH_PREFIX)]
        kept = [e for e in batch_entries if e.batches & committed]
        if kept:
            hashes: dict[str, str] = {}
            for entry in kept:
                hashes.update(_read(entry.path))
            self.add(hashes, {b for e in kept for b in e.batches}, name)
        for entry in batch_entries:  # merged, or left by a batch a killed run staged but never committed
            entry.path.unlink(missing_ok=True)
        for leftover in self.folder.glob(".*.tmp"):  # a write a kill interrupted
            leftover.unlink(missing_ok=True)
        entries = self.entries()
        if committed <= {b for e in entries for b in e.batches}:
            for entry in entries:  # from before batches were recorded, and rebuilt since: superseded
                if not entry.batches:
                    entry.path.unlink(missing_ok=True)

    def _write(self, name: str, hashes: dict[str, str], batches: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder.parent, 0o700)
        os.chmod(self.folder, 0o700)
        path = self.folder / name
        temporary = self.folder / f".{name}.{secrets.token_hex(4)}.tmp"
        schema = pa.schema(
            [("hash", pa.string()), ("kind", pa.string())], metadata={BATCHES_KEY: json.dumps(batches).encode()}
        )
        ordered = sorted(hashes)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as fh:
            pq.write_table(pa.table({"hash": ordered, "kind": [hashes[h] for h in ordered]}, schema=schema), fh)
            fh.flush()
            os.fsync(fh.fileno())
        temporary.replace(path)  # an entry is whole or absent: a kill never leaves half of one


def _listed(entry: Entry) -> str:
    stat = entry.path.stat()
    return f"{entry.path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def _read(path: Path) -> dict[str, str]:
    table = pq.read_table(path)
    hashes = table.column("hash").to_pylist()
    # Entries from before kinds were recorded hold hashes only.
    kinds = table.column("kind").to_pylist() if "kind" in table.column_names else ["identifier"] * len(hashes)
    return dict(zip(hashes, kinds, strict=True))
