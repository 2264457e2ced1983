"""Fail closed per record: rows the PHI gate found an identifier in leave the dataset, the rest stays.

A hit in a header-derived table withholds the whole instance (its images/, slices/ rows, and the volume of
its series, re-assembled without it); a hit in reports/ withholds the report. Each withheld record becomes a
quarantine/ row (stage `privacy`, reason `identifier_in_text` or `identifier_in_header`, the column and
the kind of identifier named, never the value) and a `_withheld/` row, so every later ingest reads its file
again: once a rule change lets the record through, its quarantine and `_withheld/` rows are released.
A quarantine detail holding an identifier is replaced by the kind alone. Everything in one atomic commit.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from radpipe.dataset.commit import Move, commit_moves
from radpipe.dataset.rewrite import history_files, stage_removals, stage_rewrite
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore, StagedTableWriter
from radpipe.deid.pseudonym import IdentifierKind, Pseudonymizer
from radpipe.ingest.quarantine import Quarantined, Reason, Stage

WITHHELD_TABLE = "_withheld"
# The key column of each table the gate scans for source content.
KEY_COLUMNS = {
    "instances": "sop_instance_uid",
    "images": "sop_instance_uid",
    "slices": "sop_instance_uid",
    "volumes": "series_instance_uid",
    "studies": "study_instance_uid",
    "reports": "report_id",
}


@dataclass
class Offending:
    """What a gate scan found, by row: table -> key -> (column, kind); quarantine details -> kind."""

    rows: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def add(self, table: str, key: str, column: str, kind: str) -> None:
        self.rows.setdefault(table, {}).setdefault(key, (column, kind))

    def __bool__(self) -> bool:
        return bool(self.details) or any(self.rows.values())


@dataclass
class Withheld:
    """What one withholding did."""

    instances: int = 0
    reports: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)  # records withheld by this gate, new or again
    details_redacted: int = 0
    released: int = 0  # records withheld earlier that a later run let through
    new: int = 0  # not withheld before: what the run's withheld fraction counts (a retried record is not news)
    committed: bool = False  # whether it changed any table

    @property
    def records(self) -> int:
        return self.instances + self.reports


def tag(pseudonymizer: Pseudonymizer, table: str, key: str) -> str:
    """A keyed name for a record: its key may itself be what leaked, so it is never written as is."""
    return pseudonymizer.digest(IdentifierKind.SOURCE_KEY, f"withheld\x00{table}\x00{key}").hex()[:20]


def withhold(store: DatasetStore, pseudonymizer: Pseudonymizer, offending: Offending) -> Withheld:
    """Withhold the offending records and release those no longer offending, atomically; call under the lock."""
    instances = store.read_table(
        "instances", ["sop_instance_uid", "series_instance_uid", "study_instance_uid", "source_key"]
    ).to_pylist()
    reports = {
        r["report_id"]: r["source_key"] for r in store.read_table("reports", ["report_id", "source_key"]).to_pylist()
    }
    records = _records(offending, instances, reports)  # (table, key) -> (source_key, reason, detail)
    earlier = store.read_table(WITHHELD_TABLE).to_pylist()
    batch_id = "withhold-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    result = Withheld()
    removal = _removal_plan(records, instances, result)
    moves, _ = stage_removals(store, removal, batch_id)
    # Older versions' files holding a withheld record (or a quarantine detail that named an identifier) go too.
    history = history_files(store, {**removal, "quarantine": ("detail", set(offending.details))})
    writers = _stage_records(store, pseudonymizer, batch_id, records, {row["tag"] for row in earlier}, result)
    offending_tags = {tag(pseudonymizer, t, k) for t, k in records}
    present = {tag(pseudonymizer, "instances", r["sop_instance_uid"]) for r in instances}
    present |= {tag(pseudonymizer, "reports", key) for key in reports}
    released = {row["tag"] for row in earlier if row["tag"] in present and row["tag"] not in offending_tags}
    result.released = len(released)
    moves += _rewrite_quarantine(store, batch_id, offending.details, released, result)
    if released:
        moves += stage_rewrite(store, WITHHELD_TABLE, batch_id, lambda t: _without_tags(t, released))
    for writer, final in zip(
        writers, (f"quarantine/part-{batch_id}.parquet", f"{WITHHELD_TABLE}/part-{batch_id}.parquet"), strict=True
    ):
        staged = writer.close()
        if staged is not None:
            moves.append((staged, final))
    if moves:  # withheld rows hold identifiers: the files they were in go at once, not at vacuum
        commit_moves(store, batch_id, moves, purge=True, purge_also=history)
        result.committed = True
    return result


def _removal_plan(
    records: dict[tuple[str, str], tuple[str, Reason, str]], instances: list[dict[str, str]], result: Withheld
) -> dict[str, tuple[str, set[str]]]:
    """table -> (key column, keys to remove): a withheld instance goes from every table holding it."""
    sops = {key for table, key in records if table == "instances"}
    series = {r["series_instance_uid"] for r in instances if r["sop_instance_uid"] in sops}
    report_ids = {key for table, key in records if table == "reports"}
    result.instances, result.reports = len(sops), len(report_ids)
    return {
        "instances": ("sop_instance_uid", sops),
        "images": ("sop_instance_uid", sops),
        "slices": ("sop_instance_uid", sops),
        "curation": ("sop_instance_uid", sops),
        "embeddings": ("sop_instance_uid", sops),
        "volumes": ("series_instance_uid", series),  # re-assembled from the slices that remain
        "reports": ("report_id", report_ids),
    }


def _stage_records(
    store: DatasetStore,
    pseudonymizer: Pseudonymizer,
    batch_id: str,
    records: dict[tuple[str, str], tuple[str, Reason, str]],
    earlier_tags: set[str],
    result: Withheld,
) -> tuple[StagedTableWriter, StagedTableWriter]:
    """A quarantine row and a withheld/ row for each record withheld for the first time."""
    quarantine = StagedTableWriter(store, batch_id, "quarantine")
    quarantine.staged = quarantine.staged.replace("quarantine.parquet", "quarantine-withheld.parquet")
    ledger = StagedTableWriter(store, batch_id, WITHHELD_TABLE)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for (table, key), (source_key, reason, detail) in sorted(records.items()):
        result.by_reason[reason.value] += 1
        name = tag(pseudonymizer, table, key)
        if name in earlier_tags:
            continue  # withheld again after a retry: recorded once
        result.new += 1
        quarantine.add(Quarantined(source_key, Stage.PRIVACY, reason, f"{detail} (record {name})").row(), batch_id)
        ledger.add(
            {"tag": name, "source_key": source_key, "table": table, "reason": reason.value, "withheld_at": now},
            batch_id,
        )
    return quarantine, ledger


def withheld_sources(store: DatasetStore) -> frozenset[str]:
    """Source keys of files holding a withheld record: ingest reads them again."""
    return frozenset(store.read_table(WITHHELD_TABLE, ["source_key"]).column("source_key").to_pylist())


def _records(
    offending: Offending, instances: list[dict[str, str]], reports: dict[str, str]
) -> dict[tuple[str, str], tuple[str, Reason, str]]:
    """Map hits to the records they withhold: (table, key) -> (source_key, reason, detail)."""
    by = {c: {} for c in ("series_instance_uid", "study_instance_uid")}  # type: dict[str, dict[str, list[str]]]
    source_of = {}
    for row in instances:
        source_of[row["sop_instance_uid"]] = row["source_key"]
        for column in by:
            by[column].setdefault(row[column], []).append(row["sop_instance_uid"])
    records: dict[tuple[str, str], tuple[str, Reason, str]] = {}
    for table, hits in offending.rows.items():
        for key, (column, kind) in hits.items():
            detail = f"identifier in {table}.{column}: {kind}"
            if table == "reports":
                if key in reports:
                    records.setdefault(("reports", key), (reports[key], Reason.IDENTIFIER_IN_TEXT, detail))
                continue
            if table == "volumes":
                sops = by["series_instance_uid"].get(key, [])
            elif table == "studies":
                sops = by["study_instance_uid"].get(key, [])
            else:
                sops = [key]
            for sop in sops:
                if sop in source_of:
                    records.setdefault(("instances", sop), (source_of[sop], Reason.IDENTIFIER_IN_HEADER, detail))
    return records


def _rewrite_quarantine(
    store: DatasetStore, batch_id: str, details: dict[str, str], released: set[str], result: Withheld
) -> list[Move]:
    """Quarantine rows whose detail holds an identifier keep only its kind; released records' rows go."""
    suffixes = {f"(record {name})" for name in released}

    def change(table: pa.Table) -> pa.Table | None:
        rows = table.to_pylist()
        kept, changed = [], False
        for row in rows:
            if row["stage"] == Stage.PRIVACY.value and any(str(row["detail"]).endswith(s) for s in suffixes):
                changed = True
                continue
            if row["detail"] in details:
                row["detail"] = f"detail withheld: it held an identifier ({details[row['detail']]})"
                result.details_redacted += 1
                changed = True
            kept.append(row)
        return pa.Table.from_pylist(kept, schema=TABLES["quarantine"]) if changed else None

    return stage_rewrite(store, "quarantine", batch_id, change) if details or suffixes else []


def _without_tags(table: pa.Table, tags: set[str]) -> pa.Table | None:
    mask = pc.invert(pc.is_in(table.column("tag"), value_set=pa.array(sorted(tags), pa.string())))
    kept = table.filter(mask)
    return kept if kept.num_rows != table.num_rows else None
