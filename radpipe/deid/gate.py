"""The PHI gate: after ingest, scan every table for identifiers seen in the sources.

Identifiers are kept only as keyed hashes of their normal forms (radpipe/deid/identifiers.py), in an
operator-only store under RADPIPE_HOME (radpipe/deid/identifier_store.py). A hit names the table and
column, never the value. The gate refuses to pass while the store lacks a committed batch's identifiers:
an incomplete store would check nothing for that batch and pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.deid.identifiers import IdentifierIndex
from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.errors import RadpipeError

GATE_FILE = "_gate.json"
SCANNED_TABLES = ("instances", "images", "slices", "volumes", "reports", "studies", "quarantine", "_ledger")


class PhiGateFailed(RadpipeError):
    """Identifiers from the sources were found in the dataset; nothing downstream may read it."""


class IdentifierStoreIncomplete(PhiGateFailed):
    """Committed batches have no entry in the identifier store: the gate cannot check them."""


@dataclass(frozen=True)
class GateHit:
    table: str
    column: str
    rows: int


def committed_batches(store: DatasetStore) -> set[str]:
    """The ingest batches whose rows the dataset holds (every ingest batch commits its ledger rows)."""
    return {b for b in store.read_table("_ledger", ["batch_id"]).column("batch_id").to_pylist() if b}


def uncovered_batches(store: DatasetStore, identifiers: IdentifierStore) -> set[str]:
    """Committed batches whose identifiers the store does not hold."""
    return committed_batches(store) - identifiers.covered()


def require_complete(store: DatasetStore, identifiers: IdentifierStore) -> None:
    """Raise IdentifierStoreIncomplete (and record the refusal) unless every committed batch is covered."""
    missing = uncovered_batches(store, identifiers)
    if not missing:
        return
    reason = (
        f"the identifier store {identifiers.folder} lacks the identifiers of {len(missing)} committed ingest "
        "batches, so the gate cannot check their rows; rerun `radpipe ingest` with the same sources, "
        "RADPIPE_HOME and key to restore them"
    )
    record_result(store, [], refused=reason)
    raise IdentifierStoreIncomplete(f"PHI gate refused: {reason}")


def _text_columns(schema: pa.Schema) -> list[str]:
    def is_text(kind: pa.DataType) -> bool:
        return pa.types.is_string(kind) or (pa.types.is_list(kind) and pa.types.is_string(kind.value_type))

    return [f.name for f in schema if is_text(f.type)]


def scan(store: DatasetStore, pseudonymizer: Pseudonymizer, identifiers: IdentifierStore) -> list[GateHit]:
    """Every (table, column) holding a source identifier, with the number of rows that do.

    Raises IdentifierStoreIncomplete first when the store does not cover every committed batch.
    """
    require_complete(store, identifiers)
    hits: list[GateHit] = []
    stored = identifiers.load()
    if not stored:
        return hits
    index = IdentifierIndex(pseudonymizer.key, stored)
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
        why = result.get("refused") or describe(result.get("hits", []))
        raise PhiGateFailed(f"{store.uri} failed the PHI gate ({why}); nothing may read it until the gate passes")
    if result.get("version") != gated_version(store):
        raise PhiGateFailed(f"{store.uri} changed since its last PHI gate; run the gate again (`radpipe ingest`)")


def record_result(store: DatasetStore, hits: list[GateHit], refused: str = "") -> None:
    """Write _gate.json; downstream steps refuse a dataset whose last gate did not pass."""
    result = {
        "passed": not hits and not refused,
        "refused": refused,
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
