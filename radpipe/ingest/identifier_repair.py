"""Rebuild the PHI gate's identifier entries of committed batches from their source files.

A store under RADPIPE_HOME can lack committed batches: it was lost or moved, or written by a radpipe
that did not record batches. The gate refuses such a dataset; the next ingest with the same sources
re-reads the identifiers of exactly those batches' files, the way the batch collected them.
"""

from __future__ import annotations

import logging

import fsspec

from radpipe.deid import Deidentifier
from radpipe.deid.identifier_store import IdentifierStore
from radpipe.deid.identifiers import PhiKind, gate_hashes, header_forms, identifier_forms
from radpipe.engine import Engine, TaskFailure
from radpipe.ingest.batch import report_identifiers
from radpipe.ingest.sources import SourceFile
from radpipe.preprocess.dicom_image import parse_dicom
from radpipe.reports.readers import read_reports

log = logging.getLogger(__name__)


def source_identifiers(kind: str, source: SourceFile) -> dict[str, PhiKind]:
    """The identifier forms ingest collects from one file (radpipe/ingest/batch.py), read again."""
    if kind in ("report", "report_part"):  # a part: the whole file's identifiers, a superset
        forms: dict[str, PhiKind] = {}
        with fsspec.open(source.url, "rb") as stream:
            for item in read_reports(source.url, stream):
                forms.update(identifier_forms(report_identifiers(item)))
        return forms
    raw = source.read()
    try:
        ds = parse_dicom(raw)
    except Exception:  # ingest collects nothing from a file it cannot parse
        return {}
    return header_forms(ds)


def batch_hashes(
    batch_id: str, files: list[tuple[str, SourceFile]], deid: Deidentifier
) -> tuple[str, dict[str, str] | None]:
    """Worker task: the keyed hashes one committed batch's files give; None when one cannot be read now."""
    forms: dict[str, PhiKind] = {}
    try:
        for kind, source in files:
            forms.update(source_identifiers(kind, source))
    except OSError:  # the file went away or is unreadable: the batch stays uncovered and the gate refuses
        return batch_id, None
    return batch_id, gate_hashes(deid.pseudonymizer.key, forms)


def repair_identifiers(
    engine: Engine,
    identifiers: IdentifierStore,
    missing: dict[str, list[tuple[str, str]]],
    found: dict[str, SourceFile],
    deid: Deidentifier,
) -> int:
    """Store the identifiers of each batch in `missing` (batch -> its (kind, source_key)) whose files are all
    in `found` and readable; the number of batches repaired."""
    tasks = []
    for batch_id, members in sorted(missing.items()):
        if all(key in found for _, key in members):
            tasks.append((batch_id, [(kind, found[key]) for kind, key in members], deid))
    log.warning(
        "the PHI gate's identifier store lacks %d committed batches; re-reading %d of them from the sources",
        len(missing),
        len(tasks),
    )
    repaired = 0
    for outcome in engine.map_unordered(batch_hashes, tasks, max_in_flight=engine.workers * 2):
        if isinstance(outcome, TaskFailure):
            continue
        batch_id, hashes = outcome
        if hashes is None:
            continue
        identifiers.add_batch(batch_id, hashes)
        repaired += 1
    return repaired
