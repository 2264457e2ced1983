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
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from radpipe.dataset.delta import files as delta_files
from radpipe.dataset.delta import open_table
from radpipe.dataset.store import DatasetStore
from radpipe.deid.gate_index import GateIndex, PartWriter, probe_value
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.deid.identifiers import IdentifierIndex
from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.deid.withhold import KEY_COLUMNS, Offending
from radpipe.errors import RadpipeError, SourceError

GATE_FILE = "_gate.json"
PASSED_DIR = "_gate_passed"  # one empty marker per gated version that passed
# Columns whose values come from source content: scanned for every identifier form. A pseudonymised UID or ID
# column is scanned too, so a value that escaped pseudonymisation is caught.
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "instances": (
        "sop_instance_uid",
        "series_instance_uid",
        "study_instance_uid",
        "sop_class_uid",
        "patient_id",
        "accession_number",
        "modality",
        "body_part",
        "view_position",
        "photometric_interpretation",
        "transfer_syntax_uid",
        "manufacturer",
        "study_date",
    ),
    "images": ("sop_instance_uid", "study_instance_uid"),
    "slices": ("sop_instance_uid", "series_instance_uid", "study_instance_uid", "modality"),
    "volumes": ("series_instance_uid", "study_instance_uid", "modality"),
    "reports": (
        "study_instance_uid",
        "accession_number",
        "patient_id",
        "report_date",
        "text",
        "indication",
        "findings",
        "impression",
        "rationale",
    ),
    "studies": ("study_instance_uid", "patient_id", "accession_number"),
}
# Text radpipe writes itself: scanned for specific forms only (IDs, UIDs, dates, several words), since a test
# patient called "Modality^LUT" must not make radpipe's own "unsupported modality" a leak.
RADPIPE_TEXT: dict[str, tuple[str, ...]] = {"quarantine": ("detail",), "volumes": ("issues",)}
# radpipe's own codes and keyed hashes: no source content reaches them (tests/deid hold every text column to
# one of these three lists).
RADPIPE_CODES: dict[str, tuple[str, ...]] = {
    "instances": ("content_hash", "decoder", "source_key", "batch_id"),
    "images": ("dtype", "profile"),
    "slices": ("dtype", "batch_id", "stack"),  # stack: ranks and dimension keywords, no source text
    "volumes": ("dtype", "profile", "assembled_at"),
    "reports": ("report_id", "source_key", "batch_id", "language"),
    "studies": ("split", "report_id"),
    "quarantine": ("source_key", "stage", "reason", "batch_id"),
    "_ledger": ("source_key", "kind", "mtime", "outcome", "batch_id", "committed_at"),
}
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
    kind: str = "identifier"  # PhiKind's value: what sort of identifier, never which


def committed_batches(store: DatasetStore) -> set[str]:
    """The ingest batches whose rows the dataset holds (every ingest batch commits its ledger rows)."""
    batch_ids = pc.unique(store.read_table("_ledger", ["batch_id"]).column("batch_id")).to_pylist()
    return {b for b in batch_ids if b}


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


@dataclass
class GateScan:
    """What one scan found: hits by (table, column, kind), and the rows holding them."""

    hits: list[GateHit] = field(default_factory=list)
    offending: Offending = field(default_factory=Offending)
    records: int = 0  # instances and reports held: the denominator of the withheld fraction
    rows_read: int = 0  # rows this scan read (fewer than the dataset's when an earlier gate vouches for the rest)


class _Finder:
    """The kind of identifier a value holds, and its probes (gate_index.py), remembered for short values (UIDs
    and codes repeat) up to MEMO_SIZE of them."""

    MEMO_SIZE = 100_000

    def __init__(self, index: IdentifierIndex) -> None:
        self.index = index
        self.memo: dict[tuple[str, bool], str | None] = {}
        self.probe_memo: dict[str, set[int]] = {}

    def kind(self, value: object, specific_only: bool) -> str | None:
        texts = value if isinstance(value, list) else [value]
        return next((k for t in texts if isinstance(t, str) and (k := self._find(t, specific_only))), None)

    def probes(self, value: object, into: set[int]) -> None:
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            found = self.probe_memo.get(text)
            if found is None:
                found = {probe_value(h) for h in self.index.probes(text)}
                if len(text) < 200 and len(self.probe_memo) < self.MEMO_SIZE:
                    self.probe_memo[text] = found
            into.update(found)

    def _find(self, text: str, specific_only: bool) -> str | None:
        found = self.memo.get((text, specific_only), "")
        if found == "":
            found = self.index.find(text, specific_only)
            if len(text) < 200 and len(self.memo) < self.MEMO_SIZE:  # long texts are rarely repeated
                self.memo[(text, specific_only)] = found
        return found


# The code that decides what is an identifier: a gate that passed under other rules says nothing about these.
_RULE_MODULES = ("identifiers.py", "gate.py", "gate_index.py", "withhold.py")


def scan_state(store: DatasetStore, identifiers: IdentifierStore) -> dict[str, Any]:
    """What a passing gate vouches for: the scanned tables' versions, the identifiers known, the rules used."""
    listed = identifiers.listing()
    return {
        "tables": {t: store.table_version(t) for t in SCANNED_TABLES},
        "identifiers": hashlib.sha256("\n".join(listed).encode()).hexdigest(),
        "identifier_entries": listed,
        "rules": _rules(),
    }


def _rules() -> str:
    folder = Path(__file__).parent
    return hashlib.sha256(b"".join((folder / name).read_bytes() for name in _RULE_MODULES)).hexdigest()[:16]


def scan(
    store: DatasetStore,
    pseudonymizer: Pseudonymizer,
    identifiers: IdentifierStore,
    vouched: dict[str, Any] | None = None,
) -> GateScan:
    """Every (table, column, kind of identifier) found, with the rows holding it.

    `vouched` is the state a gate passed at (`scan_state`). Under the same rules, rows that gate read are clean
    of the identifiers it knew, so only what could have changed is read: the files committed since, and, when
    entries were added to the identifier store since, the earlier files whose probes meet the new entries'
    hashes (gate_index.py). A rerun that added nothing, an erasure or a compaction costs (almost) no scan; an
    ingest costs its own rows and the earlier files that share a word with its identifiers. Without `vouched`
    (or under other rules) every row is read and the index rebuilt. Raises IdentifierStoreIncomplete first when
    the store does not cover every committed batch.
    """
    require_complete(store, identifiers)
    result = GateScan()
    result.records = sum(_rows(store, table) for table in ("instances", "reports"))
    index = GateIndex(identifiers.folder, _rules())
    files = _to_read(store, identifiers, index, vouched)
    if files is not None and not any(files.values()):
        return result  # nothing committed since the gate that vouched for every row, no identifier new
    stored = identifiers.load()
    if not stored:
        return result
    finder = _Finder(IdentifierIndex(pseudonymizer.key, stored))
    counts: Counter[tuple[str, str, str]] = Counter()
    for table in SCANNED_TABLES:
        writer = index.writer(table, rebuild=files is None)
        wanted = None if files is None else files[table]
        result.rows_read += _scan_table(store, table, finder, counts, result.offending, wanted, writer)
        written = writer.close()
        current = {store.relative(path) for path in store.table_files(table)}
        index.tidy(table, current, keep_only=([written] if written else []) if files is None else None)
    result.hits = [GateHit(table, column, rows, kind) for (table, column, kind), rows in sorted(counts.items())]
    return result


def _to_read(
    store: DatasetStore, identifiers: IdentifierStore, index: GateIndex, vouched: dict[str, Any] | None
) -> dict[str, set[str]] | None:
    """Per table, the files a gate must read given the state the last passing gate vouched for; None: all."""
    if not vouched or vouched.get("rules") != index.rules:
        return None
    versions = {str(table): int(version) for table, version in vouched.get("tables", {}).items()}
    added = {table: _added_since(store, table, versions.get(table, -1)) for table in SCANNED_TABLES}
    now = identifiers.listing()
    if now == vouched.get("identifier_entries"):
        return added
    if "identifier_entries" not in vouched:  # vouched before entries were listed: what is new is unknown
        return None
    new = [entry for entry in now if entry not in set(vouched["identifier_entries"])]
    hashes = {probe_value(h) for h in identifiers.load(new)}
    files = {}
    for table in SCANNED_TABLES:
        earlier = {store.relative(path): path for path in store.table_files(table) if path not in added[table]}
        unindexed = set(earlier) - index.indexed(table)
        meeting = index.matching(table, hashes) & set(earlier)
        files[table] = added[table] | {earlier[name] for name in unindexed | meeting}
    return files


def _added_since(store: DatasetStore, table: str, version: int) -> set[str]:
    """The table's current files that its snapshot at `version` did not hold."""
    current = set(store.table_files(table))
    if version > store.table_version(table):  # the table was made anew since (a converted dataset)
        return current
    try:
        then = open_table(store.table_uri(table), version) if version >= 0 else None
    except SourceError:  # that version's log entry was cleaned up: read the whole table
        return current
    return current - {store.path(table, name) for name in (delta_files(then) if then is not None else [])}


def _scan_table(
    store: DatasetStore,
    table: str,
    finder: _Finder,
    counts: Counter[tuple[str, str, str]],
    offending: Offending,
    files: set[str] | None,
    index: PartWriter,
) -> int:
    """One table's scanned columns, a row group at a time: hits counted, their rows named in `offending`, each
    file's probes written to the gate index as soon as the file is read."""
    # column -> scanned for specific forms only (radpipe's own text) or for every form (source content)
    columns = {c: False for c in SOURCE_COLUMNS.get(table, ())} | {c: True for c in RADPIPE_TEXT.get(table, ())}
    key_column = KEY_COLUMNS.get(table)
    wanted = sorted(set(columns) | ({key_column} if key_column else set()))
    read = 0
    if files is not None and not files:
        return read
    file, found = "", set[int]()
    for group in store.iter_row_groups(table, wanted, files=files):
        if group.file != file:
            if file:
                index.add(store.relative(file), found)
            file, found = group.file, set()
        read += group.rows.num_rows
        keys = group.rows.column(key_column).to_pylist() if key_column else None
        for column in (c for c in columns if c in group.rows.column_names):
            for row, value in enumerate(group.rows.column(column).to_pylist()):
                finder.probes(value, found)
                if len(found) >= PartWriter.ROWS:  # a large file's probes go out in parts: memory stays flat
                    index.add(store.relative(file), found)
                    found = set()
                kind = finder.kind(value, columns[column])
                if not kind:
                    continue
                counts[(table, column, kind)] += 1
                if keys is not None:
                    offending.add(table, str(keys[row]), column, kind)
                elif table == "quarantine" and column == "detail":
                    offending.details[str(value)] = kind
    if file:
        index.add(store.relative(file), found)
    return read


def _rows(store: DatasetStore, table: str) -> int:
    return store.count_rows(table)


GATED_TABLES = ("instances", "images", "reports", "quarantine")


def gated_version(store: DatasetStore) -> str:
    """A digest of the gated tables' Delta versions: any ingest, erasure or withholding changes it."""
    versions = ",".join(f"{table}={store.table_version(table)}" for table in GATED_TABLES)
    return hashlib.sha256(versions.encode()).hexdigest()[:16]


def carry_gate(store: DatasetStore, before: str) -> None:
    """After a change that alters no row (compaction): a gate that passed `before` holds for the new version."""
    path = store.path(GATE_FILE)
    if not store.fs.exists(path):
        return
    with store.fs.open(path, "r") as fh:
        result = json.load(fh)
    if result.get("passed") and result.get("version") == before:
        record_result(store, [], withheld=result.get("withheld"))  # no state: the next gate reads every row


def vouched_state(store: DatasetStore) -> dict[str, Any] | None:
    """The state the last gate passed at, when it passed (see `scan`)."""
    path = store.path(GATE_FILE)
    if not store.fs.exists(path):
        return None
    with store.fs.open(path, "r") as fh:
        result = json.load(fh)
    state: dict[str, Any] | None = result.get("state") if result.get("passed") else None
    return state


def require_gate_passed(store: DatasetStore) -> None:
    """Refuse a dataset whose current contents have not passed the PHI gate."""
    if store.version is not None:
        if not store.fs.exists(store.path(PASSED_DIR, gated_version(store))):
            raise PhiGateFailed(f"{store.uri}@{store.version} was never passed by the PHI gate; nothing may read it")
        return
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


def record_result(
    store: DatasetStore,
    hits: list[GateHit],
    refused: str = "",
    withheld: dict[str, int] | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Write _gate.json; downstream steps refuse a dataset whose last gate did not pass.

    `state` (scan_state, taken after any withholding) lets the next gate read only what was added since.
    """
    passed = not hits and not refused
    result = {
        "passed": passed,
        "state": state if passed else None,
        "refused": refused,
        "withheld": withheld or {},  # records withheld by this gate, by reason
        "version": gated_version(store),
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hits": [asdict(hit) for hit in hits],
    }
    temporary = store.path(GATE_FILE + ".tmp")
    with store.fs.open(temporary, "w") as fh:
        json.dump(result, fh)
    store.fs.mv(temporary, store.path(GATE_FILE))
    if result["passed"]:  # a version that passed stays readable as DATASET@VERSION after later changes
        store.fs.makedirs(store.path(PASSED_DIR), exist_ok=True)
        store.fs.pipe_file(store.path(PASSED_DIR, str(result["version"])), b"")


def describe(hits: list[GateHit] | list[dict[str, Any]]) -> str:
    """Where the gate found identifiers ("table.column (n rows)"), never what it found."""
    rows = [asdict(hit) if isinstance(hit, GateHit) else hit for hit in hits]
    return (
        "; ".join(f"{h['table']}.{h['column']} ({h['rows']} rows: {h.get('kind', 'identifier')})" for h in rows)
        or "no detail"
    )
