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


# Tables rewritten whole under one file name (studies/, curation/): a flipped flag can keep the size, so their
# bytes are hashed. The others grow by new, uniquely named batch files, where name and size identify content.
_REWRITTEN_TABLES = ("studies", "curation")


def dataset_version(store: DatasetStore) -> str:
    """A digest of the dataset's manifest (every table file's name and size, derived tables' bytes)."""
    digest = hashlib.sha256()
    for table in ("instances", "images", "volumes", "reports", "studies", "quarantine", "curation"):
        for file in store.table_files(table):
            digest.update(f"{table}/{file.rsplit('/', 1)[-1]}:{store.fs.size(file)}\n".encode())
            if table in _REWRITTEN_TABLES:
                digest.update(hashlib.sha256(store.fs.cat_file(file)).digest())
    return digest.hexdigest()[:16]


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
