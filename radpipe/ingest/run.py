"""The ingest driver: walk, skip what the ledger has, fan batches out, publish them in order (publish.py)."""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radpipe.dataset.commit import recover
from radpipe.dataset.guard import check_key, dataset_lock
from radpipe.dataset.legacy import upgrade
from radpipe.dataset.store import DatasetStore, StagedBatch, StagedTableWriter
from radpipe.deid import Deidentifier
from radpipe.deid.erasure import read_erased_keys
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.engine import Engine, TaskFailure
from radpipe.errors import SourceError
from radpipe.ingest.batch import ingest_dicom_batch, ingest_report_files
from radpipe.ingest.identifier_repair import repair_identifiers
from radpipe.ingest.known_keys import KnownKeys
from radpipe.ingest.ledger import Ledger, pending
from radpipe.ingest.publish import publish, publish_unlisted
from radpipe.ingest.quarantine import Quarantined, Reason, Stage
from radpipe.ingest.report_parts import report_chunks, split_report_file
from radpipe.ingest.sources import SourceFile, check_source
from radpipe.ingest.studies import rebuild_studies
from radpipe.ingest.summary import IngestSummary
from radpipe.ingest.volumes import assemble_volumes
from radpipe.preprocess import Profile
from radpipe.reports.readers import REPORT_SUFFIXES

# A batch's images/ file should land near 0.5-1 GB (CONTRACT: pixel tables in large files).
TARGET_FILE_BYTES = 768 * 1024**2
MIN_BATCHES_PER_WORKER = 8  # enough batches to keep every worker busy and the progress bar moving

ProgressCallback = Callable[[int, int], None]


def _chunks(files: list[SourceFile], workers: int, profile: Profile) -> Iterator[list[SourceFile]]:
    bytes_per_image = profile.size[0] * profile.size[1] * (2 if profile.dtype == "uint16" else 1)
    largest = max(1, TARGET_FILE_BYTES // bytes_per_image)
    size = max(1, min(largest, math.ceil(len(files) / (workers * MIN_BATCHES_PER_WORKER))))
    for start in range(0, len(files), size):
        yield files[start : start + size]


def check_sources(dicom_source: str | None, report_source: str | None, dataset_uri: str | None = None) -> None:
    """Raise a one-line error unless the sources exist and the dataset can be written where asked."""
    if not dicom_source and not report_source:
        raise SourceError("nothing to ingest: give --dicom and/or --reports")
    for source in (dicom_source, report_source):
        if source:
            check_source(source)
    if dataset_uri is None:
        return
    try:
        store = DatasetStore(dataset_uri)
    except (ValueError, ImportError) as exc:
        raise SourceError(f"cannot open dataset {dataset_uri!r}: {exc}") from None
    if store.fs.exists(store.root) and not store.fs.isdir(store.root):
        raise SourceError(f"dataset path exists and is not a folder: {dataset_uri}")
    for source in (dicom_source, report_source):
        if source and _inside(dataset_uri, source):
            raise SourceError("the dataset must not be inside a source folder (it would be read as input)")


def _inside(dataset_uri: str, source: str) -> bool:
    if "://" in dataset_uri or "://" in source:
        return dataset_uri.rstrip("/").startswith(source.rstrip("/") + "/")
    return Path(dataset_uri).resolve().is_relative_to(Path(source).resolve())


def ingest(
    dicom_source: str | None,
    report_source: str | None,
    dataset_uri: str,
    deid: Deidentifier,
    profile: Profile,
    engine: Engine,
    on_progress: ProgressCallback | None = None,
    *,
    home: Path,
    log_quarantined_paths: bool = False,
    volume_profiles: dict[str, str] | None = None,
    dicom_manifest: str | None = None,
) -> IngestSummary:
    """Ingest new files from the sources into the dataset; safe to rerun and to interrupt.

    `dicom_manifest` (a newline list of paths or URLs, or an S3 Inventory CSV) names the DICOM objects to
    consider instead of listing the DICOM source (radpipe/ingest/manifest.py).

    The source identifiers of each batch are kept under `home` (RADPIPE_HOME) as keyed hashes for the
    PHI gate, before the batch commits; entries a lost or old store lacks are rebuilt from the sources.
    With `log_quarantined_paths`, the clear paths of quarantined files go to an operator-only log there
    (mode 0600). `volume_profiles` maps CT/MR to a volume profile
    (default radpipe.ingest.volumes.DEFAULT_VOLUME_PROFILES).
    """
    if dicom_manifest and not dicom_source:
        raise SourceError("a manifest lists DICOM objects under a source: give the --dicom source too")
    check_sources(dicom_source, report_source, dataset_uri)
    started = time.perf_counter()
    store = DatasetStore(dataset_uri)
    store.fs.makedirs(store.root, exist_ok=True)
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
    with dataset_lock(store, run_id):
        dataset_id = check_key(store, deid.pseudonymizer.key)
        upgrade(store)
        operator_log = _operator_log(home, dataset_id) if log_quarantined_paths else None
        state = _RunState(IdentifierStore(home, dataset_id), operator_log)
        summary = _ingest_locked(
            dicom_source,
            report_source,
            store,
            deid,
            profile,
            engine,
            run_id,
            on_progress,
            state,
            volume_profiles,
            dicom_manifest,
        )
        summary.dataset_id = dataset_id
        state.identifiers.merge_batches(state.committed, run_id)
    summary.seconds = time.perf_counter() - started
    if not summary.balanced:  # a broken invariant is a bug in radpipe, never the user's input
        raise RuntimeError(
            f"ingest accounting broken: {summary.files_in} files in, "
            f"{summary.instances_added} instances + {summary.quarantined_files} quarantined"
        )
    return summary


def _ingest_locked(
    dicom_source: str | None,
    report_source: str | None,
    store: DatasetStore,
    deid: Deidentifier,
    profile: Profile,
    engine: Engine,
    run_id: str,
    on_progress: ProgressCallback | None,
    state: _RunState,
    volume_profiles: dict[str, str] | None = None,
    dicom_manifest: str | None = None,
) -> IngestSummary:
    summary = IngestSummary()
    summary.recovered_batches, summary.dropped_batches = recover(store)
    ledger = Ledger.load(store)
    state.committed = set(ledger.batch_ids)
    uncovered = state.committed - state.identifiers.covered()
    uncovered_files = ledger.files_of(uncovered) if uncovered else {}
    wanted = {key for files in uncovered_files.values() for _, key in files}
    found: dict[str, SourceFile] = {}
    dicom_files, unlisted = pending(dicom_source, "dicom", deid, ledger, summary, wanted, found, dicom_manifest, engine)
    report_files, unlisted_reports = pending(
        report_source, "report", deid, ledger, summary, wanted, found, engine=engine
    )
    if uncovered:  # before anything new commits: the gate must be able to check what is already there
        repaired = repair_identifiers(engine, state.identifiers, uncovered_files, found, deid)
        summary.identifier_batches_repaired = repaired
        summary.identifier_batches_unrepaired = len(uncovered) - repaired
    report_files = [f for f in report_files if f.url.lower().endswith(REPORT_SUFFIXES)] + [
        f for f in report_files if not f.url.lower().endswith(REPORT_SUFFIXES)
    ]
    summary.files_in = len(dicom_files) + len(unlisted)
    summary.report_files_in = len(report_files)
    known = {
        "instances": KnownKeys(store, "instances", "sop_instance_uid"),
        "reports": KnownKeys(store, "reports", "report_id"),
    }
    state.urls = {f.source_key: f.url for f in [*dicom_files, *report_files]}
    erased = read_erased_keys(store)
    if unlisted or unlisted_reports:
        publish_unlisted(store, f"{run_id}-w", unlisted, unlisted_reports, summary)
    progress = _Progress(len(dicom_files) + len(report_files), on_progress)
    dicom_tasks: list[tuple[object, ...]] = []
    for n, chunk in enumerate(_chunks(dicom_files, engine.workers, profile)):
        dicom_args = (store.uri, f"{run_id}-d{n:05d}", chunk, deid, profile, erased, known["instances"].lookup)
        dicom_tasks.append((ingest_dicom_batch, dicom_args, len(chunk)))
    _run_all(engine, dicom_tasks, store, known, summary, state, progress)
    if report_files:
        # Reports after the images: the scrubber then knows every name and ID the headers gave (keyed hashes).
        tasks = _report_tasks(report_files, engine, store, run_id, deid, ledger, erased, state, known["reports"])
        _run_all(engine, tasks, store, known, summary, state, progress)
    _derive_tables(store, volume_profiles, summary)
    return summary


def _report_tasks(
    report_files: list[SourceFile],
    engine: Engine,
    store: DatasetStore,
    run_id: str,
    deid: Deidentifier,
    ledger: Ledger,
    erased: frozenset[str],
    state: _RunState,
    known: KnownKeys,
) -> list[tuple[object, ...]]:
    """Report batches: a large JSONL in line-aligned byte ranges (several workers at once), small files grouped."""
    known_forms = engine.share(state.identifiers.load())
    read_by_earlier_runs = ledger.records({f.source_key for f in report_files})
    tasks: list[tuple[object, ...]] = []
    parts = [part for source in report_files for part in split_report_file(source, engine.workers)]
    for n, group in enumerate(report_chunks(parts, engine.workers, MIN_BATCHES_PER_WORKER)):
        read_before = {
            f.source_key: read_by_earlier_runs[f.source_key] for f in group if f.source_key in read_by_earlier_runs
        }
        report_args = (store.uri, f"{run_id}-r{n:05d}", group, deid, read_before, erased, known_forms, known.lookup)
        files_done = sum(1 for f in group if f.part is None or f.part.final)  # for the progress bar
        tasks.append((ingest_report_files, report_args, files_done))
    return tasks


def _derive_tables(store: DatasetStore, volume_profiles: dict[str, str] | None, summary: IngestSummary) -> None:
    """volumes/ for the series that changed, then studies/ (counts and report links) from the tables."""
    volumes = assemble_volumes(store, volume_profiles)
    summary.volumes_assembled = volumes.assembled
    summary.volumes_with_issues = volumes.issues
    links = rebuild_studies(store)
    summary.studies = links.studies
    summary.reports_linked, summary.reports_orphaned = links.reports_linked, links.reports_orphaned


def _run_all(
    engine: Engine,
    tasks: list[tuple[object, ...]],
    store: DatasetStore,
    known: dict[str, KnownKeys],
    summary: IngestSummary,
    state: _RunState,
    progress: _Progress,
) -> None:
    """Run the tasks; a batch whose worker dies is split until the file that kills it stands alone."""
    work = tasks
    while work:
        crashed = _run_round(engine, work, store, known, summary, state, progress)
        work = []
        for fn, args, size, error in crashed:
            files = args[2]
            if isinstance(files, list) and len(files) > 1:  # a batch of files: split until the culprit stands alone
                half = len(files) // 2
                for suffix, chunk in (("a", files[:half]), ("b", files[half:])):
                    work.append((fn, (args[0], f"{args[1]}{suffix}", chunk, *args[3:]), len(chunk)))
            else:
                source = files[0] if isinstance(files, list) else files
                batch = _crashed_batch(store, f"{args[1]}x", source, fn is ingest_dicom_batch, error)
                _publish_and_record(store, batch, known, summary, state)
                progress.advance(size)


@dataclass
class _RunState:
    """What the driver keeps during a run that must not go into the summary (it is shown and logged)."""

    identifiers: IdentifierStore  # the PHI gate's keyed hashes, one entry per batch before its commit
    operator_log: Path | None = None  # clear paths of quarantined files, for the operator only
    committed: set[str] = field(default_factory=set)  # batch ids in the ledger, this run's included
    urls: dict[str, str] = field(default_factory=dict)


def _operator_log(home: Path, dataset_id: str) -> Path:
    folder = home / "operator"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder / f"{dataset_id}-quarantined-paths.jsonl"


def _log_quarantined_paths(path: Path, entries: list[tuple[str, str, str]]) -> None:
    """Operator-only record (mode 0600, outside the dataset) of which source path each source_key is."""
    if not entries:
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as fh:
        for source_key, url, outcome in entries:
            fh.write(json.dumps({"source_key": source_key, "path": url, "outcome": outcome}) + "\n")


@dataclass
class _Progress:
    total: int
    callback: ProgressCallback | None
    done: int = 0

    def __post_init__(self) -> None:
        if self.callback:
            self.callback(0, self.total)

    def advance(self, files: int) -> None:
        self.done += files
        if self.callback:
            self.callback(self.done, self.total)


def _run_round(
    engine: Engine,
    work: list[tuple[object, ...]],
    store: DatasetStore,
    known: dict[str, KnownKeys],
    summary: IngestSummary,
    state: _RunState,
    progress: _Progress,
) -> list[tuple[Any, ...]]:
    """Run tasks and publish their batches in task (path) order; return the tasks whose worker crashed.

    Publishing in order means which copy of a duplicate is kept never depends on timing: the same
    archive always gives the same dataset.
    """
    results = engine.map_unordered(
        _run_task,
        ((index, fn, args, size) for index, (fn, args, size) in enumerate(work)),
        max_in_flight=engine.workers * 2,
    )
    finished: dict[int, StagedBatch | None] = {}
    crashed: list[tuple[Any, ...]] = []
    next_index = 0
    for outcome in results:
        if isinstance(outcome, TaskFailure):
            index, fn, args, size = outcome.args
            crashed.append((fn, args, size, outcome.error))
            finished[index] = None
        else:
            index, batch, size = outcome
            finished[index] = batch
            progress.advance(size)
        while next_index in finished:
            ready = finished.pop(next_index)
            if ready is not None:
                _publish_and_record(store, ready, known, summary, state)
            next_index += 1
    return crashed


def _crashed_batch(store: DatasetStore, batch_id: str, source: SourceFile, dicom: bool, error: str) -> StagedBatch:
    """The quarantine record of a file that kills the worker reading it (isolated by splitting batches)."""
    reason = Reason.UNDECODABLE if dicom else Reason.UNREADABLE
    record = Quarantined(
        source.source_key,
        Stage.PIXELS if dicom else Stage.READ,
        reason,
        f"processing this file crashed the worker ({error})",
    )
    writer = StagedTableWriter(store, batch_id, "quarantine")
    writer.add(record.row(), batch_id)
    staged = writer.close()
    assert staged is not None
    batch = StagedBatch(batch_id, files={"quarantine": staged})
    kind = "dicom" if dicom else "report"
    batch.ledger.append(
        {
            "records": 0,
            "source_key": source.source_key,
            "kind": kind,
            "size": source.size,
            "mtime": source.mtime,
            "outcome": f"quarantined:{reason.value}",
            "committed_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
    )
    if not dicom:
        batch.counts["report_quarantined:unreadable"] = 1
    return batch


def _run_task(
    index: int, fn: Callable[..., StagedBatch], args: tuple[object, ...], size: int
) -> tuple[int, StagedBatch, int]:
    return index, fn(*args), size


def _publish_and_record(
    store: DatasetStore, batch: StagedBatch, known: dict[str, KnownKeys], summary: IngestSummary, state: _RunState
) -> None:
    # The batch's identifiers are stored before its rows commit: a kill at any point leaves no committed
    # batch the gate cannot check (an entry of a batch that never commits is dropped at the end of a run).
    state.identifiers.add_batch(batch.batch_id, batch.phi)
    publish(store, batch, known, summary)
    state.committed.add(batch.batch_id)
    if state.operator_log is not None:
        _log_quarantined_paths(
            state.operator_log,
            [
                (str(row["source_key"]), state.urls.get(str(row["source_key"]), ""), str(row["outcome"]))
                for row in batch.ledger
                if str(row["outcome"]).startswith("quarantined:")
            ],
        )
