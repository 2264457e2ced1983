"""Worker-side batch tasks: process a list of files into staged table files (one Dask task each)."""

from __future__ import annotations

import datetime as dt
import logging
import warnings

import cv2
import fsspec

from radpipe.dataset.store import DatasetStore, StagedBatch, StagedTableWriter
from radpipe.deid import Deidentifier
from radpipe.ingest.dicom_file import IngestedInstance, process_dicom
from radpipe.ingest.quarantine import Quarantined, Reason, Stage
from radpipe.ingest.report_file import process_report
from radpipe.ingest.sources import SourceFile
from radpipe.preprocess import Profile
from radpipe.reports.readers import read_reports


def _quiet_libraries() -> None:
    """Codec and parser warnings can quote header values; a worker's log must never show them."""
    warnings.filterwarnings("ignore", module="pydicom")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _ledger_row(source: SourceFile, kind: str, outcome: str) -> dict[str, object]:
    return {
        "source_key": source.source_key,
        "kind": kind,
        "size": source.size,
        "mtime": source.mtime,
        "outcome": outcome,
        "committed_at": _now(),
    }


def ingest_dicom_batch(
    dataset_uri: str, batch_id: str, files: list[SourceFile], deid: Deidentifier, profile: Profile
) -> StagedBatch:
    """Process DICOM files into staged instances/, images/ and quarantine/ files."""
    # Parallelism is one process per core; codec or OpenCV thread pools on top only oversubscribe.
    cv2.setNumThreads(1)
    _quiet_libraries()
    store = DatasetStore(dataset_uri)
    writers = {t: StagedTableWriter(store, batch_id, t) for t in ("instances", "images", "quarantine")}
    batch = StagedBatch(batch_id, keys={"instances": []})
    seen: set[str] = set()
    for source in files:
        outcome: IngestedInstance | Quarantined
        try:
            raw = source.read()
        except OSError as exc:
            outcome = Quarantined(
                source.source_key, Stage.READ, Reason.UNREADABLE, f"read failed ({type(exc).__name__})"
            )
        else:
            batch.input_bytes += len(raw)
            outcome = process_dicom(raw, source.source_key, fsspec.core.strip_protocol(source.url), deid, profile)
        if isinstance(outcome, IngestedInstance) and outcome.instance["sop_instance_uid"] in seen:
            outcome = Quarantined(
                source.source_key,
                Stage.DEDUP,
                Reason.DUPLICATE,
                f"same SOP instance as {outcome.instance['sop_instance_uid']} in this batch",
            )
        if isinstance(outcome, Quarantined):
            writers["quarantine"].add(outcome.row(), batch_id)
            batch.ledger.append(_ledger_row(source, "dicom", f"quarantined:{outcome.reason.value}"))
            batch.counts[f"quarantined:{outcome.reason.value}"] = (
                batch.counts.get(f"quarantined:{outcome.reason.value}", 0) + 1
            )
            continue
        uid = outcome.instance["sop_instance_uid"]
        seen.add(uid)
        writers["instances"].add(outcome.instance, batch_id)
        writers["images"].add(outcome.image, batch_id)
        batch.keys["instances"].append((uid, source.source_key))
        batch.ledger.append(_ledger_row(source, "dicom", "ingested"))
        batch.counts["ingested"] = batch.counts.get("ingested", 0) + 1
    for table, writer in writers.items():
        staged = writer.close()
        if staged:
            batch.files[table] = staged
    return batch


def ingest_report_file(dataset_uri: str, batch_id: str, source: SourceFile, deid: Deidentifier) -> StagedBatch:
    """Read one report file into staged reports/ and quarantine/ files."""
    _quiet_libraries()
    store = DatasetStore(dataset_uri)
    writers = {t: StagedTableWriter(store, batch_id, t) for t in ("reports", "quarantine")}
    batch = StagedBatch(batch_id, keys={"reports": []})
    seen: set[str] = set()
    try:
        with fsspec.open(source.url, "rb") as stream:
            for item in read_reports(source.url, stream):
                outcome = process_report(item, source.source_key, deid)
                if not isinstance(outcome, Quarantined) and outcome["report_id"] in seen:
                    outcome = Quarantined(
                        source.source_key,
                        Stage.DEDUP,
                        Reason.DUPLICATE,
                        "same report as an earlier line of this file",
                        item.position,
                    )
                if isinstance(outcome, Quarantined):
                    writers["quarantine"].add(outcome.row(), batch_id)
                    key = f"report_quarantined:{outcome.reason.value}"
                else:
                    seen.add(outcome["report_id"])
                    writers["reports"].add(outcome, batch_id)
                    batch.keys["reports"].append((outcome["report_id"], source.source_key))
                    key = "reports"
                batch.counts[key] = batch.counts.get(key, 0) + 1
    except OSError as exc:
        row = Quarantined(source.source_key, Stage.READ, Reason.UNREADABLE, f"read failed ({type(exc).__name__})")
        writers["quarantine"].add(row.row(), batch_id)
        batch.counts["report_quarantined:unreadable"] = 1
    batch.input_bytes = source.size
    batch.ledger.append(_ledger_row(source, "report", f"reports:{batch.counts.get('reports', 0)}"))
    for table, writer in writers.items():
        staged = writer.close()
        if staged:
            batch.files[table] = staged
    return batch
