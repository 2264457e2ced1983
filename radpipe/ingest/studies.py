"""Rebuild studies/ from instances/ and reports/: counts, report links, and the splits kept."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from radpipe.dataset.commit import replace_table
from radpipe.dataset.schema import STUDIES
from radpipe.dataset.store import DatasetStore


@dataclass(frozen=True)
class LinkStats:
    studies: int
    reports: int
    reports_linked: int
    reports_orphaned: int  # kept in reports/, waiting for their images


# studies/ records what it was derived from (its inputs' files) and its link counts: an ingest that changed none
# of them (a rerun that finds nothing new) keeps it instead of reading every instance and report again.
_INPUTS_KEY, _LINKS_KEY = b"radpipe.inputs", b"radpipe.links"
_INPUT_TABLES = ("instances", "images", "volumes", "reports")


def _inputs_digest(store: DatasetStore) -> str:
    versions = ",".join(f"{table}={store.table_version(table)}" for table in _INPUT_TABLES)
    return hashlib.sha256(versions.encode()).hexdigest()


def _kept_links(store: DatasetStore, inputs: str) -> LinkStats | None:
    """The link counts of the current studies/, when it was derived from exactly these inputs."""
    files = store.table_files("studies")
    if len(files) != 1:
        return None
    with store.fs.open(files[0], "rb") as fh:
        metadata = pq.read_schema(fh).metadata or {}
    if metadata.get(_INPUTS_KEY, b"").decode() != inputs or _LINKS_KEY not in metadata:
        return None
    return LinkStats(**json.loads(metadata[_LINKS_KEY]))


def rebuild_studies(store: DatasetStore) -> LinkStats:
    """Derive studies/ (one row per study with images) and link reports by study UID or accession.

    Skipped, with the recorded counts, when instances, images, volumes and reports are the files studies/ was
    derived from (curate rewrites studies/ without the record, so the next ingest derives it again).
    """
    inputs = _inputs_digest(store)
    kept = _kept_links(store, inputs)
    if kept is not None:
        return kept
    instances = store.read_table(
        "instances", ["study_instance_uid", "patient_id", "accession_number", "is_synthetic"]
    ).to_pylist()
    images = store.read_table("images", ["study_instance_uid"]).column("study_instance_uid").to_pylist()
    volumes = store.read_table("volumes", ["study_instance_uid", "issues"]).to_pylist()
    reports = store.read_table("reports", ["report_id", "study_instance_uid", "accession_number"]).to_pylist()
    previous = store.read_table("studies", ["study_instance_uid", "split"]).to_pylist()
    splits = {row["study_instance_uid"]: row["split"] for row in previous}

    studies, by_accession = _study_rows(instances, splits)
    for uid in images:
        if uid in studies:
            studies[uid]["n_images"] += 1
    for volume in volumes:  # assembled ones: a series held back for its geometry has nothing to train on
        held = studies.get(volume["study_instance_uid"])
        if held is not None and not volume["issues"]:
            held["n_volumes"] += 1
    linked = _link_reports(studies, by_accession, reports)
    table = pa.Table.from_pylist(sorted(studies.values(), key=lambda s: str(s["study_instance_uid"])), schema=STUDIES)
    links = LinkStats(len(studies), len(reports), linked, len(reports) - linked)
    record = {_INPUTS_KEY: inputs.encode(), _LINKS_KEY: json.dumps(dataclasses.asdict(links)).encode()}
    replace_table(store, "studies", table.replace_schema_metadata(record))
    return links


def _study_rows(
    instances: list[dict[str, Any]], splits: dict[str, str | None]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """One row per study UID (its split kept from the last curate), and study UID by accession number."""
    studies: dict[str, dict[str, Any]] = {}
    by_accession: dict[str, str] = {}
    for row in instances:
        uid = row["study_instance_uid"]
        study = studies.setdefault(
            uid,
            {
                "study_instance_uid": uid,
                "patient_id": row["patient_id"],
                "accession_number": row["accession_number"],
                "split": splits.get(uid),
                "n_images": 0,
                "n_volumes": 0,
                "has_report": False,
                "report_id": None,
                "is_synthetic": bool(row["is_synthetic"]),
            },
        )
        study["is_synthetic"] = bool(study["is_synthetic"]) and bool(row["is_synthetic"])
        if row["accession_number"]:
            by_accession.setdefault(row["accession_number"], uid)
    return studies, by_accession


def _link_reports(
    studies: dict[str, dict[str, Any]], by_accession: dict[str, str], reports: list[dict[str, Any]]
) -> int:
    """Link each report to its study by study UID, else by accession number (the first report by id wins);
    how many were linked."""
    linked = 0
    for report in sorted(reports, key=lambda r: r["report_id"]):
        uid = report["study_instance_uid"] if report["study_instance_uid"] in studies else None
        uid = uid or by_accession.get(report["accession_number"] or "")
        if uid is None:
            continue
        linked += 1
        studies[uid]["has_report"] = True
        studies[uid]["report_id"] = studies[uid]["report_id"] or report["report_id"]
    return linked
