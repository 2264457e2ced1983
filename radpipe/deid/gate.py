"""The PHI gate: after ingest, scan every table for identifiers seen in the sources.

Identifiers are kept only as keyed hashes of their normal forms (radpipe/deid/identifiers.py), in an
operator-only folder under RADPIPE_HOME. A hit names the table and column, never the value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from radpipe.deid.identifiers import IdentifierIndex
from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.errors import RadpipeError

GATE_FILE = "_gate.json"
SCANNED_TABLES = ("instances", "images", "slices", "volumes", "reports", "studies", "quarantine", "_ledger")


class PhiGateFailed(RadpipeError):
    """Identifiers from the sources were found in the dataset; nothing downstream may read it."""


@dataclass(frozen=True)
class GateHit:
    table: str
    column: str
    rows: int


class IdentifierStore:
    """Keyed hashes of source identifiers for one dataset, outside it, readable by the operator only."""

    def __init__(self, home: Path, dataset_id: str) -> None:
        self.folder = home / "phi-gate" / dataset_id

    def add(self, hashes: set[str], run_id: str) -> None:
        if not hashes:
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder.parent, 0o700)
        path = self.folder / f"part-{run_id}.parquet"
        temporary = path.with_suffix(".tmp")
        pq.write_table(pa.table({"hash": sorted(hashes)}), temporary)
        os.chmod(temporary, 0o600)
        temporary.replace(path)

    def load(self) -> set[str]:
        if not self.folder.exists():
            return set()
        found: set[str] = set()
        for part in sorted(self.folder.glob("part-*.parquet")):
            found.update(pq.read_table(part).column("hash").to_pylist())
        return found


def _text_columns(schema: pa.Schema) -> list[str]:
    def is_text(kind: pa.DataType) -> bool:
        return pa.types.is_string(kind) or (pa.types.is_list(kind) and pa.types.is_string(kind.value_type))

    return [f.name for f in schema if is_text(f.type)]


def scan(store: DatasetStore, pseudonymizer: Pseudonymizer, identifiers: set[str]) -> list[GateHit]:
    """Every (table, column) holding a source identifier, with the number of rows that do."""
    hits: list[GateHit] = []
    if not identifiers:
        return hits
    index = IdentifierIndex(pseudonymizer.key, identifiers)
    memo: dict[str, bool] = {}

    def leaks(value: str) -> bool:
        found = memo.get(value)
        if found is None:
            found = index.contains(value)
            if len(value) < 200:  # repeated short values (UIDs, codes); long texts are rarely repeated
                memo[value] = found
        return found

    for table in SCANNED_TABLES:
        columns = _text_columns(TABLES[table])
        counts = dict.fromkeys(columns, 0)
        for file in store.table_files(table):
            with store.fs.open(file, "rb") as fh:
                parquet = pq.ParquetFile(fh)
                present = [c for c in columns if c in parquet.schema_arrow.names]
                for group in range(parquet.num_row_groups):
                    data = parquet.read_row_group(group, columns=present)
                    for column in present:
                        for value in data.column(column).to_pylist():
                            texts = value if isinstance(value, list) else [value]
                            if any(isinstance(t, str) and leaks(t) for t in texts):
                                counts[column] += 1
        hits.extend(GateHit(table, column, rows) for column, rows in counts.items() if rows)
    return hits


GATED_TABLES = ("instances", "images", "reports", "quarantine")


def gated_version(store: DatasetStore) -> str:
    """A digest of the gated tables' files (names and sizes): any ingest or erasure changes it."""
    digest = hashlib.sha256()
    for table in GATED_TABLES:
        for file in store.table_files(table):
            digest.update(f"{table}/{file.rsplit('/', 1)[-1]}:{store.fs.size(file)}\n".encode())
    return digest.hexdigest()[:16]


def require_gate_passed(store: DatasetStore) -> None:
    """Refuse a dataset whose current contents have not passed the PHI gate."""
    path = store.path(GATE_FILE)
    if not store.fs.exists(path):
        raise PhiGateFailed(f"{store.uri} has not been through the PHI gate; run `radpipe ingest` (it runs the gate)")
    with store.fs.open(path, "r") as fh:
        result = json.load(fh)
    if not result.get("passed"):
        raise PhiGateFailed(
            f"{store.uri} failed the PHI gate ({describe(result.get('hits', []))}); "
            "nothing may read it until the gate passes"
        )
    if result.get("version") != gated_version(store):
        raise PhiGateFailed(f"{store.uri} changed since its last PHI gate; run the gate again (`radpipe ingest`)")


def record_result(store: DatasetStore, hits: list[GateHit]) -> None:
    """Write _gate.json; downstream steps refuse a dataset whose last gate did not pass."""
    result = {
        "passed": not hits,
        "version": gated_version(store),
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hits": [asdict(hit) for hit in hits],
    }
    temporary = store.path(GATE_FILE + ".tmp")
    with store.fs.open(temporary, "w") as fh:
        json.dump(result, fh)
    store.fs.mv(temporary, store.path(GATE_FILE))


def describe(hits: list[GateHit] | list[dict[str, Any]]) -> str:
    """Where the gate found identifiers ("table.column (n rows)"), never what it found."""
    rows = [asdict(hit) if isinstance(hit, GateHit) else hit for hit in hits]
    return "; ".join(f"{h['table']}.{h['column']} ({h['rows']} rows)" for h in rows) or "no detail"
