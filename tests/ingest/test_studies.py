"""studies/ derived in Arrow gives exactly what the row-by-row definition gives, on tables with every edge case."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest

from radpipe.dataset.schema import TABLES
from radpipe.ingest.studies import derive_studies


def _reference(
    instances: list[dict[str, Any]],
    images: list[str],
    volumes: list[dict[str, Any]],
    reports: list[dict[str, Any]],
    previous: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], int]:
    """The row-by-row definition (radpipe before the Arrow derivation): studies rows, reports linked."""
    splits = {row["study_instance_uid"]: row["split"] for row in previous}
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
    for uid in images:
        if uid in studies:
            studies[uid]["n_images"] += 1
    for volume in volumes:
        held = studies.get(volume["study_instance_uid"])
        if held is not None and not volume["issues"]:
            held["n_volumes"] += 1
    linked = 0
    for report in sorted(reports, key=lambda r: r["report_id"]):
        uid = report["study_instance_uid"] if report["study_instance_uid"] in studies else None
        uid = uid or by_accession.get(report["accession_number"] or "")
        if uid is None:
            continue
        linked += 1
        studies[uid]["has_report"] = True
        studies[uid]["report_id"] = studies[uid]["report_id"] or report["report_id"]
    return sorted(studies.values(), key=lambda s: str(s["study_instance_uid"])), linked


def _tables(seed: int) -> tuple[list[dict[str, Any]], ...]:
    """Random tables drawn from small pools, so that studies share accessions, reports miss or hit, nulls occur."""
    rng = random.Random(seed)
    uids = [f"1.2.{n}" for n in range(rng.randint(1, 40))]
    accessions = [None, "", *[f"A{n}" for n in range(8)]]
    patients = [None, *[f"p{n}" for n in range(6)]]
    instances = [
        {
            "study_instance_uid": rng.choice(uids),
            "patient_id": rng.choice(patients),
            "accession_number": rng.choice(accessions),
            "is_synthetic": rng.choice([True, False, None]),
        }
        for _ in range(rng.randint(0, 120))
    ]
    elsewhere = [*uids, "9.9.9", ""]  # images/reports of studies with no instance, and an empty UID
    images = [rng.choice(elsewhere) for _ in range(rng.randint(0, 80))]
    issues = [None, [], ["geometry: uneven spacing"]]
    volumes = [{"study_instance_uid": rng.choice(elsewhere), "issues": rng.choice(issues)} for _ in range(20)]
    reports = [
        {
            "report_id": f"r{n:03d}",
            "study_instance_uid": rng.choice([None, *elsewhere]),
            "accession_number": rng.choice(accessions),
        }
        for n in rng.sample(range(500), rng.randint(0, 60))
    ]
    previous = [{"study_instance_uid": uid, "split": rng.choice([None, "train", "val", "test"])} for uid in uids[::2]]
    previous += [{"study_instance_uid": uids[0], "split": "test"}] if seed % 4 == 0 else []  # twice: the last wins
    return instances, images, volumes, reports, previous


def _arrow(rows: list[dict[str, Any]], table: str, columns: list[str]) -> pa.Table:
    return pa.Table.from_pylist(rows, pa.schema([TABLES[table].field(c) for c in columns]))


@pytest.mark.parametrize("seed", range(40))
def test_arrow_derivation_matches_the_row_by_row_definition(seed: int) -> None:
    instances, images, volumes, reports, previous = _tables(seed)
    table, links = derive_studies(
        _arrow(instances, "instances", ["study_instance_uid", "patient_id", "accession_number", "is_synthetic"]),
        _arrow([{"study_instance_uid": uid} for uid in images], "images", ["study_instance_uid"]),
        _arrow(volumes, "volumes", ["study_instance_uid", "issues"]),
        _arrow(reports, "reports", ["report_id", "study_instance_uid", "accession_number"]),
        _arrow(previous, "studies", ["study_instance_uid", "split"]),
    )
    expected, linked = _reference(instances, images, volumes, reports, previous)
    assert table.schema == TABLES["studies"]
    assert table.to_pylist() == expected
    assert (links.studies, links.reports, links.reports_linked) == (len(expected), len(reports), linked)
    assert links.reports_orphaned == len(reports) - linked
