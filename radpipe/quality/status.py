"""What later steps ask of validation: the dataset's version, and whether that version passed."""

from __future__ import annotations

import hashlib
import json

from radpipe.dataset.store import DatasetStore
from radpipe.errors import RadpipeError

QUALITY_DIR = "_quality"
SUMMARY_FILE = "summary.json"


class NotValidated(RadpipeError):
    """Training or release asked of a dataset version that has not passed validation."""


class ValidationFailed(RadpipeError):
    """At least one expectation failed; nothing downstream may use this dataset version."""


DATA_TABLES = ("instances", "images", "volumes", "reports", "studies", "quarantine", "curation")
VERSIONS_DIR = "_versions"


def dataset_version(store: DatasetStore) -> str:
    """The dataset's version: a digest of its data tables' Delta versions, recorded under `_versions/`.

    The manifest behind each digest is kept, so `DATASET@VERSION` reads exactly those table versions again
    (`pinned_store`). Only a commit changes a table's version: a rerun that adds nothing keeps the digest.
    """
    versions = {table: store.table_version(table) for table in DATA_TABLES}
    versions = {table: version for table, version in versions.items() if version >= 0}
    text = json.dumps(versions, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if store.versions is None:
        path = store.path(VERSIONS_DIR, f"{digest}.json")
        if not store.fs.exists(path):
            store.fs.makedirs(store.path(VERSIONS_DIR), exist_ok=True)
            with store.fs.open(path, "w") as fh:
                fh.write(text)
    return digest


def pinned_store(uri: str) -> DatasetStore:
    """`DATASET` at its latest versions, or `DATASET@VERSION` at the table versions that version recorded."""
    base, at, version = uri.rpartition("@")
    if not at or "/" in version or not version:
        return DatasetStore(uri)
    store = DatasetStore(base)
    path = store.path(VERSIONS_DIR, f"{version}.json")
    if not store.fs.exists(path):
        raise RadpipeError(f"{base} has no dataset version {version!r} (see `_versions/` for those it recorded)")
    with store.fs.open(path, "r") as fh:
        return DatasetStore(base, versions={t: int(v) for t, v in json.load(fh).items()})


def last_validation(uri: str) -> dict[str, object] | None:
    """The summary of the last validation, for steps that need a validated dataset version.

    Read through the dataset's filesystem, so it answers where the dataset lives (local or object storage).
    """
    store = DatasetStore(uri)
    path = store.path(QUALITY_DIR, SUMMARY_FILE)
    if not store.fs.exists(path):
        return None
    with store.fs.open(path, "r") as fh:
        loaded: dict[str, object] = json.load(fh)
    return loaded


def require_validated(store: DatasetStore) -> str:
    """The dataset's version, if its last validation passed and nothing changed since; else NotValidated."""
    summary = last_validation(store.uri)
    if summary is None:
        raise NotValidated("the dataset has not been validated: run `radpipe validate DATASET` first")
    version = dataset_version(store)
    if summary.get("dataset_version") != version:
        raise NotValidated(
            f"the dataset changed since its last validation (version {summary.get('dataset_version')}, "
            f"now {version}): run `radpipe validate DATASET` again"
        )
    if not summary.get("passed"):
        raise NotValidated(f"dataset version {version} failed validation; see its Data Docs and fix the data first")
    return version
