"""The ingest ledger: which input files earlier runs read, and which files this run still has to read."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.deid.gate import committed_batches
from radpipe.deid.withhold import withheld_sources
from radpipe.engine import Engine
from radpipe.ingest.manifest import walk_manifest
from radpipe.ingest.quarantine import Quarantined, Reason, Stage
from radpipe.ingest.sources import SourceFile, WalkError, walk, walk_split
from radpipe.ingest.summary import IngestSummary


@dataclass
class Ledger:
    """What earlier runs recorded per input file, looked up for the files a run lists (never loaded whole).

    A rerun that lists nothing new reads one column of the ledger (its batch ids); one that lists N files reads
    the ledger's source keys and the rows of those N files only.
    """

    store: DatasetStore
    batch_ids: set[str]  # committed batches
    withheld: frozenset[str]  # source keys read again until a rule change lets their records through

    @classmethod
    def load(cls, store: DatasetStore) -> Ledger:
        return cls(store, committed_batches(store), withheld_sources(store))

    def _rows(self, column: str, values: Collection[str]) -> list[dict[str, Any]]:
        columns = ["kind", "source_key", "size", "mtime", "outcome", "records", "batch_id"]
        groups = self.store.iter_row_groups("_ledger", columns, where=(column, values))
        return [row for group in groups for row in group.rows.to_pylist()]

    def done(self, keys: Collection[str]) -> set[tuple[str, str, int, str]]:
        """(kind, source_key, size, change marker) of the files among `keys` not to read again.

        A file is done when some run recorded it with no retryable outcome among that run's rows for it: a part
        of a large report file that failed (its batch may publish after the last part's) keeps the file unread.
        """
        runs: dict[tuple[str, str, int, str], dict[str, bool]] = {}
        for row in self._rows("source_key", keys):
            file = (row["kind"], row["source_key"], row["size"], row["mtime"])
            run = runs.setdefault(file, {})
            run_id = _run_of(row["batch_id"])
            run[run_id] = run.get(run_id, True) and row["outcome"] not in RETRYABLE_OUTCOMES
        return {file for file, by_run in runs.items() if any(by_run.values()) and file[1] not in self.withheld}

    def records(self, keys: Collection[str]) -> dict[str, int]:
        """Report file source_key -> records read by the last run that read it, for the files among `keys`."""
        records: dict[str, int] = {}
        for row in self._rows("source_key", keys):
            if row["kind"] == "report" and row["records"]:
                records[row["source_key"]] = max(records.get(row["source_key"], 0), int(row["records"]))
        return records

    def files_of(self, batch_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        """Committed batch id -> its files' (kind, source_key), for the batches among `batch_ids`."""
        batches: dict[str, list[tuple[str, str]]] = {}
        for row in self._rows("batch_id", batch_ids):
            batches.setdefault(row["batch_id"], []).append((row["kind"], row["source_key"]))
        return batches


# A file that could not be read is tried again by the next run (the outage may be over).
RETRYABLE_OUTCOMES = frozenset({"quarantined:unreadable"})


def _run_of(batch_id: str) -> str:
    """The run a batch belongs to: "20261129T143720-5d904a" of "20261129T143720-5d904a-r00003x"."""
    return "-".join(batch_id.split("-")[:2])


def pending(
    source: str | None,
    kind: str,
    deid: Deidentifier,
    ledger: Ledger,
    summary: IngestSummary,
    wanted: set[str],
    found: dict[str, SourceFile],
    manifest: str | None = None,
    engine: Engine | None = None,
) -> tuple[list[SourceFile], list[Quarantined]]:
    """Files under `source` (or those a `manifest` lists) the ledger does not hold yet, and what could not be
    listed.

    Files whose source key is in `wanted` are also put in `found`, pending or not. No source (None or ""): nothing.
    """
    pending: list[SourceFile] = []
    unlisted: list[Quarantined] = []
    if not source:  # None, or "" left in a form or a deployment's parameters: not the current folder
        return pending, unlisted
    listed: list[SourceFile] = []
    if manifest is not None:
        entries = walk_manifest(manifest, source)
    else:  # an object store's prefixes are listed on the engine's workers
        entries = walk(source) if engine is None else walk_split(source, engine)
    for entry in entries:
        if isinstance(entry, WalkError):
            key = deid.pseudonymizer.source_key(entry.url)
            unlisted.append(Quarantined(key, Stage.READ, Reason.UNREADABLE, entry.detail))
            continue
        url, size, mtime = entry
        listed.append(SourceFile(url, deid.pseudonymizer.source_key(url), size, mtime))
    done = ledger.done({file.source_key for file in listed}) if listed else set()
    for file in listed:
        if kind == "report":
            summary.report_files += 1
        else:
            summary.files_seen += 1
        if file.source_key in wanted:
            found[file.source_key] = file
        if (kind, file.source_key, file.size, file.mtime) in done:
            if kind == "dicom":
                summary.files_skipped += 1
            continue
        pending.append(file)
    return pending, unlisted
