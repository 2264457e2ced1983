"""The ingest ledger: which input files earlier runs read, and which files this run still has to read."""

from __future__ import annotations

from dataclasses import dataclass

from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.deid.withhold import withheld_sources
from radpipe.ingest.manifest import walk_manifest
from radpipe.ingest.quarantine import Quarantined, Reason, Stage
from radpipe.ingest.sources import SourceFile, WalkError, walk
from radpipe.ingest.summary import IngestSummary


@dataclass
class Ledger:
    """What earlier runs recorded per input file."""

    done: set[tuple[str, str, int, str]]  # (kind, source_key, size, change marker) not to read again
    records: dict[str, int]  # report file source_key -> records read by the last run that read it
    batches: dict[str, list[tuple[str, str]]]  # committed batch id -> its files' (kind, source_key)

    @classmethod
    def load(cls, store: DatasetStore) -> Ledger:
        columns = ["kind", "source_key", "size", "mtime", "outcome", "records", "batch_id"]
        rows = store.read_table("_ledger", columns).to_pylist()
        withheld = withheld_sources(store)  # read again until a rule change lets their records through
        # A file is done when some run recorded it with no retryable outcome among that run's rows for it: a part
        # of a large report file that failed (its batch may publish after the last part's) keeps the file unread.
        runs: dict[tuple[str, str, int, str], dict[str, bool]] = {}
        for row in rows:
            file = (row["kind"], row["source_key"], row["size"], row["mtime"])
            run = runs.setdefault(file, {})
            run_id = _run_of(row["batch_id"])
            run[run_id] = run.get(run_id, True) and row["outcome"] not in RETRYABLE_OUTCOMES
        done = {file for file, by_run in runs.items() if any(by_run.values()) and file[1] not in withheld}
        records: dict[str, int] = {}
        for row in rows:
            if row["kind"] == "report" and row["records"]:
                records[row["source_key"]] = max(records.get(row["source_key"], 0), int(row["records"]))
        batches: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            batches.setdefault(row["batch_id"], []).append((row["kind"], row["source_key"]))
        return cls(done, records, batches)


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
) -> tuple[list[SourceFile], list[Quarantined]]:
    """Files under `source` (or those a `manifest` lists) the ledger does not hold yet, and what could not be
    listed.

    Files whose source key is in `wanted` are also put in `found`, pending or not. No source (None or ""): nothing.
    """
    pending: list[SourceFile] = []
    unlisted: list[Quarantined] = []
    if not source:  # None, or "" left in a form or a deployment's parameters: not the current folder
        return pending, unlisted
    for entry in walk(source) if manifest is None else walk_manifest(manifest, source):
        if isinstance(entry, WalkError):
            key = deid.pseudonymizer.source_key(entry.url)
            unlisted.append(Quarantined(key, Stage.READ, Reason.UNREADABLE, entry.detail))
            continue
        url, size, mtime = entry
        key = deid.pseudonymizer.source_key(url)
        if kind == "report":
            summary.report_files += 1
        else:
            summary.files_seen += 1
        if key in wanted:
            found[key] = SourceFile(url, key, size, mtime)
        if (kind, key, size, mtime) in ledger.done:
            if kind == "dicom":
                summary.files_skipped += 1
            continue
        pending.append(SourceFile(url, key, size, mtime))
    return pending, unlisted
