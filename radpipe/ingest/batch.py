"""Worker-side batch tasks: process a list of files into staged table files (one Dask task each)."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import cv2
import fsspec

from radpipe.dataset.store import DatasetStore, StagedBatch, StagedTableWriter
from radpipe.deid import Deidentifier
from radpipe.deid.identifiers import IdentifierIndex, PhiKind, gate_hashes, identifier_forms
from radpipe.ingest.dicom_file import IngestedInstance, process_dicom
from radpipe.ingest.known_keys import KeyLookup
from radpipe.ingest.quarantine import Quarantined, Reason, Stage
from radpipe.ingest.report_file import process_report
from radpipe.ingest.sources import SourceFile
from radpipe.preprocess import Profile
from radpipe.reports.labeler import LABELLED_LANGUAGES
from radpipe.reports.readers import read_jsonl_part, read_reports
from radpipe.reports.record import BadReport, ReportRecord


def _quiet_libraries() -> None:
    """Codec and parser warnings can quote header values; a worker's log must never show them."""
    warnings.filterwarnings("ignore", module="pydicom")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _ledger_row(source: SourceFile, kind: str, outcome: str) -> dict[str, object]:
    return {
        "records": 0,
        "source_key": source.source_key,
        "kind": kind,
        "size": source.size,
        "mtime": source.mtime,
        "outcome": outcome,
        "committed_at": _now(),
    }


def ingest_dicom_batch(
    dataset_uri: str,
    batch_id: str,
    files: list[SourceFile],
    deid: Deidentifier,
    profile: Profile,
    erased: frozenset[str] = frozenset(),
    existing: KeyLookup | None = None,
) -> StagedBatch:
    """Process DICOM files into staged instances/, images/ and quarantine/ files.

    `erased` holds pseudonyms (patient IDs, accession numbers, study UIDs) erased on request: their
    files are held back as `erased_patient`, never ingested again. `existing` is where instances/ was when the
    run began: the batch's UIDs already held there are looked up here, for the driver's de-duplication.
    """
    # Parallelism is one process per core; codec or OpenCV thread pools on top only oversubscribe.
    cv2.setNumThreads(1)
    _quiet_libraries()
    store = DatasetStore(dataset_uri)
    writers = {t: StagedTableWriter(store, batch_id, t) for t in ("instances", "images", "slices", "quarantine")}
    batch = StagedBatch(batch_id, keys={"instances": []})
    seen: set[str] = set()
    forms: dict[str, PhiKind] = {}
    for source in files:
        outcome = _dicom_outcome(source, deid, profile, erased, seen, forms, batch)
        if isinstance(outcome, Quarantined):
            writers["quarantine"].add(outcome.row(), batch_id)
            batch.ledger.append(_ledger_row(source, "dicom", f"quarantined:{outcome.reason.value}"))
            _count(batch, f"quarantined:{outcome.reason.value}")
            continue
        uid = outcome.instance["sop_instance_uid"]
        seen.add(uid)
        writers["instances"].add(outcome.instance, batch_id)
        if outcome.image is not None:
            writers["images"].add(outcome.image, batch_id)
        for row in outcome.slices:
            writers["slices"].add(row, batch_id)
        batch.keys["instances"].append((uid, source.source_key))
        batch.ledger.append(_ledger_row(source, "dicom", "ingested"))
        _count(batch, "ingested")
        if outcome.stand_in_patient:
            _count(batch, "stand_in_patient")
        if outcome.image is not None and not outcome.instance["body_part"]:
            _count(batch, "unknown_body_part")
    return _finish(batch, writers, deid, forms, store, existing)


def _dicom_outcome(
    source: SourceFile,
    deid: Deidentifier,
    profile: Profile,
    erased: frozenset[str],
    seen: set[str],
    forms: dict[str, PhiKind],
    batch: StagedBatch,
) -> IngestedInstance | Quarantined:
    """One file read and processed; held back when its patient was erased or its instance is in the batch."""
    try:
        raw = source.read()
    except OSError as exc:
        return Quarantined(source.source_key, Stage.READ, Reason.UNREADABLE, f"read failed ({type(exc).__name__})")
    batch.input_bytes += len(raw)
    path = fsspec.core.strip_protocol(source.url)
    outcome = process_dicom(raw, source.source_key, path, deid, profile, collect=forms.update)
    if isinstance(outcome, IngestedInstance) and _erased(outcome.instance, erased):
        return Quarantined(source.source_key, Stage.PRIVACY, Reason.ERASED_PATIENT, "patient erased on request")
    if isinstance(outcome, IngestedInstance) and outcome.instance["sop_instance_uid"] in seen:
        uid = outcome.instance["sop_instance_uid"]
        return Quarantined(
            source.source_key, Stage.DEDUP, Reason.DUPLICATE, f"same SOP instance as {uid} in this batch"
        )
    return outcome


def _count(batch: StagedBatch, key: str) -> None:
    batch.counts[key] = batch.counts.get(key, 0) + 1


def ingest_report_files(
    dataset_uri: str,
    batch_id: str,
    sources: list[SourceFile],
    deid: Deidentifier,
    records_read_before: dict[str, int] | None = None,
    erased: frozenset[str] = frozenset(),
    known_forms: dict[str, str] | None = None,
    existing: KeyLookup | None = None,
) -> StagedBatch:
    """Read report files into one batch: staged reports/ and quarantine/ files, one ledger row per file.

    Many small files (one report per XML file) share a task and a data file; a large file (a JSONL of 10^5
    reports) is a batch of its own and streams. A file whose read fails half way keeps nothing: the rows
    of a file in a shared batch are held until the file is read whole.

    `known_forms` is the PHI gate's store (keyed hashes of the identifier forms headers gave): the scrubber
    removes every form it knows from the text (radpipe/deid/text.py). `existing` is where reports/ was when the
    run began (the batch's report ids held there are looked up for the driver).

    `records_read_before` (per source key) is how many records an earlier run read from a file that has
    changed since, typically by lines appended: broken records up to there were quarantined then and are
    not recorded again; good ones are recognised by the driver as unchanged.
    """
    _quiet_libraries()
    store = DatasetStore(dataset_uri)
    reader = _ReportBatch(store, batch_id, deid, erased, known_forms, streaming=len(sources) == 1)
    for source in sources:
        reader.read(source, (records_read_before or {}).get(source.source_key, 0))
    reader.batch.input_bytes = sum(s.size if s.part is None else s.part.end - s.part.start for s in sources)
    return _finish(reader.batch, reader.writers, deid, reader.forms, store, existing)


def _records(source: SourceFile) -> Iterator[ReportRecord | BadReport]:
    """A report file's records, or those of its part (a byte range read whole: parts are a few MB)."""
    part = source.part
    if part is None:
        with fsspec.open(source.url, "rb") as stream:
            yield from read_reports(source.url, stream)
        return
    with fsspec.open(source.url, "rb") as stream:
        stream.seek(part.start)
        data = stream.read(part.end - part.start)
    yield from read_jsonl_part(data, part.encoding, part.first_line)


class _ReportBatch:
    """The state of one report batch while its files are read (see ingest_report_files)."""

    def __init__(
        self,
        store: DatasetStore,
        batch_id: str,
        deid: Deidentifier,
        erased: frozenset[str],
        known_forms: dict[str, str] | None,
        streaming: bool,
    ) -> None:
        self.store, self.batch_id, self.deid, self.erased, self.streaming = store, batch_id, deid, erased, streaming
        self.writers = {t: StagedTableWriter(store, batch_id, t) for t in ("reports", "quarantine")}
        self.batch = StagedBatch(batch_id, keys={"reports": []})
        self.forms: dict[str, PhiKind] = {}
        self.index = IdentifierIndex(deid.pseudonymizer.key, known_forms) if known_forms else None
        self.seen: dict[str, str] = {}  # report_id -> source key of its first copy in this batch

    def read(self, source: SourceFile, records_read_before: int) -> None:
        held: list[tuple[str, dict[str, Any]]] = []  # rows of this file, until it is read whole
        counts: dict[str, int] = {}
        keys: list[tuple[str, str]] = []
        added: list[str] = []
        last_position = 0

        def emit(table: str, row: dict[str, Any]) -> None:
            if self.streaming:
                self.writers[table].add(row, self.batch_id)
            else:
                held.append((table, row))

        try:
            for item in _records(source):
                last_position = max(last_position, item.position)
                if isinstance(item, BadReport) and 0 < item.position <= records_read_before:
                    counts["report_bad_unchanged"] = counts.get("report_bad_unchanged", 0) + 1
                    continue
                self.forms.update(identifier_forms(report_identifiers(item)))
                outcome = self._outcome(item, source.source_key)
                if isinstance(outcome, Quarantined):
                    emit("quarantine", outcome.row())
                    key = f"report_quarantined:{outcome.reason.value}"
                else:
                    self.seen[outcome["report_id"]] = source.source_key
                    added.append(outcome["report_id"])
                    if outcome["language"] not in LABELLED_LANGUAGES:
                        language_key = f"report_unlabelled:{outcome['language']}"
                        counts[language_key] = counts.get(language_key, 0) + 1
                    emit("reports", outcome)
                    keys.append((outcome["report_id"], source.source_key))
                    key = "reports"
                counts[key] = counts.get(key, 0) + 1
        except OSError as exc:
            self._unreadable(source, exc, added)
            return
        for table, row in held:
            self.writers[table].add(row, self.batch_id)
        for key, count in counts.items():
            self.batch.counts[key] = self.batch.counts.get(key, 0) + count
        self.batch.keys["reports"] += keys
        # A part before the last is recorded as a part (kind report_part): it never marks the file read (the
        # last part's row does), yet names its batch, so the PHI gate's store coverage check sees the batch.
        kind = "report_part" if source.part is not None and not source.part.final else "report"
        self.batch.ledger.append(_ledger_row(source, kind, f"reports:{counts.get('reports', 0)}"))
        self.batch.ledger[-1]["records"] = last_position

    def _outcome(self, item: ReportRecord | BadReport, source_key: str) -> dict[str, Any] | Quarantined:
        outcome = _report_outcome(item, source_key, self.deid, self.seen, self.index)
        if not isinstance(outcome, Quarantined) and _erased(outcome, self.erased):
            return Quarantined(
                source_key, Stage.PRIVACY, Reason.ERASED_PATIENT, "patient erased on request", item.position
            )
        return outcome

    def _unreadable(self, source: SourceFile, exc: OSError, added: list[str]) -> None:
        """A read that fails half way must not keep half a file: drop its rows, retry it next run."""
        for report_id in added:
            self.seen.pop(report_id, None)
        if self.streaming:  # its rows went straight to the staged files: the file is the whole batch
            for writer in self.writers.values():
                writer.discard()
            self.writers["quarantine"] = StagedTableWriter(self.store, self.batch_id, "quarantine")
        row = Quarantined(source.source_key, Stage.READ, Reason.UNREADABLE, f"read failed ({type(exc).__name__})")
        self.writers["quarantine"].add(row.row(), self.batch_id)
        self.batch.counts["report_quarantined:unreadable"] = (
            self.batch.counts.get("report_quarantined:unreadable", 0) + 1
        )
        self.batch.ledger.append(_ledger_row(source, "report", "quarantined:unreadable"))


def _finish(
    batch: StagedBatch,
    writers: dict[str, StagedTableWriter],
    deid: Deidentifier,
    forms: dict[str, PhiKind],
    store: DatasetStore,
    existing: KeyLookup | None,
) -> StagedBatch:
    """Close the staged files, attach the keyed hashes of the identifiers seen (for the PHI gate) and the keys
    the dataset already held (for de-duplication)."""
    batch.phi = gate_hashes(deid.pseudonymizer.key, forms)
    for table, writer in writers.items():
        staged = writer.close()
        if staged:
            batch.files[table] = staged
    if existing is not None and existing.table in batch.keys:
        batch.held[existing.table] = existing.holders(store, {key for key, _ in batch.keys[existing.table]})
    return batch


def report_identifiers(item: ReportRecord | BadReport) -> list[tuple[PhiKind, str]]:
    """The source identifiers a report record carries in its own fields (for the PHI gate)."""
    if not isinstance(item, ReportRecord):
        return []
    fields = (
        (PhiKind.PATIENT_ID, item.patient_id),
        (PhiKind.ACCESSION, item.accession_number),
        (PhiKind.UID, item.study_instance_uid),
    )
    return [(kind, value) for kind, value in fields if value]


def _erased(row: dict[str, Any], erased: frozenset[str]) -> bool:
    if not erased:
        return False
    keys = (row.get("patient_id"), row.get("accession_number"), row.get("study_instance_uid"))
    return any(key in erased for key in keys if key)


def _report_outcome(
    item: ReportRecord | BadReport,
    source_key: str,
    deid: Deidentifier,
    seen: dict[str, str],
    index: IdentifierIndex | None = None,
) -> dict[str, Any] | Quarantined:
    try:
        outcome = process_report(item, source_key, deid, index)
    except Exception as exc:  # one odd record (bad unicode, absurd date) must not stop the file
        return Quarantined(
            source_key, Stage.REPORT, Reason.PARSE_ERROR, f"unprocessable ({type(exc).__name__})", item.position
        )
    if not isinstance(outcome, Quarantined) and outcome["report_id"] in seen:
        first = seen[outcome["report_id"]]
        where = "an earlier line of this file" if first == source_key else "a file read earlier in this batch"
        return Quarantined(source_key, Stage.DEDUP, Reason.DUPLICATE, f"same report as {where}", item.position)
    return outcome
