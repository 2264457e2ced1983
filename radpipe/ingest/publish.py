"""Publish a staged batch: drop rows earlier batches already hold, write its ledger rows, commit, count."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from radpipe.dataset.commit import commit
from radpipe.dataset.store import DatasetStore, StagedBatch, StagedTableWriter, rewrite_without
from radpipe.ingest.known_keys import KnownKeys
from radpipe.ingest.quarantine import Quarantined, Reason, Stage
from radpipe.ingest.summary import IngestSummary


@dataclass
class _Dedup:
    """What de-duplication found in one batch."""

    duplicates: dict[str, list[Quarantined]] = field(default_factory=dict)  # table -> duplicate records
    reports_unchanged: int = 0  # lines of a changed report file that were ingested before
    files_unchanged: set[str] = field(default_factory=set)  # DICOM files re-read after a touch


def _deduplicate(store: DatasetStore, batch: StagedBatch, known: dict[str, KnownKeys]) -> _Dedup:
    """Drop rows whose key an earlier batch or run already holds.

    A second copy (another file, or another line) becomes a duplicate record in quarantine/. The same
    file or line read again, because its file changed (touched, or lines appended), is not a copy:
    it is dropped silently and counted as unchanged.
    """
    found = _Dedup()
    for table, pairs in batch.keys.items():
        existing = known[table].holders({key for key, _ in pairs}, batch.held.get(table))
        dropped: set[str] = set()
        records = found.duplicates.setdefault(table, [])
        for key, source_key in pairs:
            if key not in existing:
                existing[key] = source_key
                known[table].add(key, source_key)
                continue
            dropped.add(key)
            if existing[key] == source_key:
                if table == "reports":
                    found.reports_unchanged += 1
                else:
                    found.files_unchanged.add(source_key)
                continue
            what = "instance" if table == "instances" else "report"
            detail = f"a second copy of {what} {key}, already ingested"
            records.append(Quarantined(source_key, Stage.DEDUP, Reason.DUPLICATE, detail))
        if dropped:
            column = "sop_instance_uid" if table == "instances" else "report_id"
            related = ("instances", "images", "slices") if table == "instances" else ("reports",)
            for name in related:
                if name in batch.files:
                    rewrite_without(store, batch.files[name], name, column, dropped)
    return found


def publish(store: DatasetStore, batch: StagedBatch, known: dict[str, KnownKeys], summary: IngestSummary) -> None:
    """Drop what earlier batches hold, stage the duplicates' quarantine rows and the ledger, commit, count."""
    dedup = _deduplicate(store, batch, known)
    for row in batch.ledger:
        if row["kind"] == "dicom" and row["source_key"] in dedup.files_unchanged:
            row["outcome"] = "unchanged"
    _stage_duplicates(store, batch, [record for records in dedup.duplicates.values() for record in records])
    ledger = StagedTableWriter(store, batch.batch_id, "_ledger")
    for row in batch.ledger:
        ledger.add(dict(row), batch.batch_id)
    staged_ledger = ledger.close()
    assert staged_ledger is not None
    batch.files["_ledger"] = staged_ledger
    commit(store, batch.batch_id, batch.files)
    _count_outcomes(batch, summary)
    report_duplicates = len(dedup.duplicates.get("reports", []))
    summary.reports_added -= report_duplicates + dedup.reports_unchanged
    summary.reports_quarantined["duplicate"] += report_duplicates
    summary.reports_unchanged += dedup.reports_unchanged
    summary.input_bytes += batch.input_bytes


def _stage_duplicates(store: DatasetStore, batch: StagedBatch, duplicates: list[Quarantined]) -> None:
    """Quarantine rows for second copies, in a file of their own; their files' ledger rows say so."""
    if not duplicates:
        return
    writer = StagedTableWriter(store, batch.batch_id, "quarantine")
    writer.staged = writer.staged.replace("quarantine.parquet", "quarantine-dedup.parquet")
    for record in duplicates:
        writer.add(record.row(), batch.batch_id)
    staged = writer.close()
    assert staged is not None
    batch.files["quarantine#dedup"] = staged
    duplicate_sources = Counter(record.source_key for record in duplicates)
    for row in batch.ledger:
        if row["kind"] == "dicom" and duplicate_sources[str(row["source_key"])]:
            row["outcome"] = "quarantined:duplicate"


def _count_outcomes(batch: StagedBatch, summary: IngestSummary) -> None:
    """A committed batch's ledger outcomes, added to the run's summary."""
    for row in batch.ledger:
        if row["kind"] != "dicom":
            continue
        outcome = str(row["outcome"])
        if outcome == "ingested":
            summary.instances_added += 1
        elif outcome == "unchanged":  # not new input after all: count it with the skipped files
            summary.files_in -= 1
            summary.files_skipped += 1
        else:
            summary.quarantined[outcome.split(":", 1)[1]] += 1  # the ledger stores "quarantined:<reason>"
    _count_counters(batch.counts, summary)


def _count_counters(counts: dict[str, int], summary: IngestSummary) -> None:
    """The batch's own counters ("<what>" or "<what>:<reason>"), added to the run's summary."""
    for key, count in counts.items():
        what, _, reason = key.partition(":")
        if key == "reports":
            summary.reports_added += count
        elif key == "report_bad_unchanged":
            summary.reports_unchanged += count
        elif key == "stand_in_patient":
            summary.instances_without_patient_id += count
        elif key == "unknown_body_part":
            summary.images_without_body_part += count
        elif what == "report_quarantined":
            summary.reports_quarantined[reason] += count
        elif what == "report_unlabelled":
            summary.reports_unlabelled_language[reason] += count


def publish_unlisted(
    store: DatasetStore, batch_id: str, dicom: list[Quarantined], reports: list[Quarantined], summary: IngestSummary
) -> None:
    """Folders that could not be listed go to quarantine/ (no ledger row: the next run tries again)."""
    writer = StagedTableWriter(store, batch_id, "quarantine")
    for record in [*dicom, *reports]:
        writer.add(record.row(), batch_id)
    staged = writer.close()
    assert staged is not None
    commit(store, batch_id, {"quarantine": staged})
    summary.quarantined["unreadable"] += len(dicom)
    summary.reports_quarantined["unreadable"] += len(reports)
