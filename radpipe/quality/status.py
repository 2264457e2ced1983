"""What later steps ask of validation: the dataset's version, and whether that version passed."""

from __future__ import annotations

import hashlib
import json
import posixpath

from radpipe.dataset.guard import dataset_id
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import VERSIONS_DIR, DatasetStore
from radpipe.errors import RadpipeError

QUALITY_DIR = "_quality"
SUMMARY_FILE = "summary.json"
VERSION_RECORDS = "versions"  # under _quality/: one validation summary per dataset version
DATA_TABLES = ("instances", "images", "volumes", "reports", "studies", "quarantine", "curation")


class NotValidated(RadpipeError):
    """Training or release asked of a dataset version that has not passed validation."""


class ValidationFailed(RadpipeError):
    """At least one expectation failed; nothing downstream may use this dataset version."""


def dataset_version(store: DatasetStore) -> str:
    """The dataset's version: a digest of the dataset's identity and its data tables' Delta versions, recorded
    under `_versions/`.

    The manifest behind each digest is kept, so `DATASET@VERSION` reads exactly those table versions again.
    Only a commit changes a table's version: a rerun that adds nothing keeps the digest. The identity (the id
    its first ingest recorded, which a copy keeps) tells apart two datasets whose tables went through the same
    number of commits: without it a new 1000-study demo dataset had the version of an earlier 300-study one,
    and promotion compared a candidate with the champion's stored evaluation on the other data.
    """
    versions: dict[str, object] = {table: store.table_version(table) for table in DATA_TABLES}
    versions = {table: version for table, version in versions.items() if isinstance(version, int) and version >= 0}
    identity = dataset_id(store)
    keyed = {"dataset": identity, "tables": versions} if identity else versions
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    path = store.path(VERSIONS_DIR, f"{digest}.json")
    if not store.fs.exists(path):  # the manifest names every table (the ledger, slices, ...) as it was then
        every = {table: store.table_version(table) for table in TABLES}
        store.fs.makedirs(store.path(VERSIONS_DIR), exist_ok=True)
        with store.fs.open(path, "w") as fh:
            fh.write(json.dumps({table: version for table, version in every.items() if version >= 0}, sort_keys=True))
    return digest


def last_validation(uri: str) -> dict[str, object] | None:
    """The summary of the last validation, read through the dataset's filesystem (local or object storage)."""
    store = DatasetStore(uri)
    return _read(store, store.path(QUALITY_DIR, SUMMARY_FILE))


def record_validation(store: DatasetStore, summary: dict[str, object]) -> None:
    """Keep a validation's summary under its dataset version too, so that version stays usable later."""
    folder = store.path(QUALITY_DIR, VERSION_RECORDS)
    store.fs.makedirs(folder, exist_ok=True)
    with store.fs.open(posixpath.join(folder, f"{summary['dataset_version']}.json"), "w") as fh:
        json.dump(summary, fh)


def carry_validation(store: DatasetStore, before: str, after: str) -> None:
    """Record `before`'s validation for `after` too: for a change that alters no row (compaction)."""
    summary = _validation_of(store, before)
    if summary is not None and before != after:
        record_validation(store, {**summary, "dataset_version": after, "carried_from": before})


def _validation_of(store: DatasetStore, version: str) -> dict[str, object] | None:
    recorded = _read(store, store.path(QUALITY_DIR, VERSION_RECORDS, f"{version}.json"))
    if recorded is not None:
        return recorded
    last = _read(store, store.path(QUALITY_DIR, SUMMARY_FILE))
    return last if last is not None and last.get("dataset_version") == version else None


def _read(store: DatasetStore, path: str) -> dict[str, object] | None:
    if not store.fs.exists(path):
        return None
    with store.fs.open(path, "r") as fh:
        loaded: dict[str, object] = json.load(fh)
    return loaded


def require_validated(store: DatasetStore) -> str:
    """The dataset's version (the latest, or the one it is pinned to) if that version passed validation."""
    version = dataset_version(store)
    summary = _validation_of(store, version)
    if summary is None and store.version is not None:
        raise NotValidated(f"dataset version {version} was never validated; only validated versions can be used")
    if summary is None:
        last = last_validation(store.uri)
        if last is None:
            raise NotValidated("the dataset has not been validated: run `radpipe validate DATASET` first")
        raise NotValidated(
            f"the dataset changed since its last validation (version {last.get('dataset_version')}, "
            f"now {version}): run `radpipe validate DATASET` again"
        )
    if not summary.get("passed"):
        raise NotValidated(f"dataset version {version} failed validation; see its Data Docs and fix the data first")
    return version
