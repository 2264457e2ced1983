"""studies/ derived in Arrow gives exactly what the row-by-row definition gives, on tables with every edge case."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from radpipe.ingest.studies import derive_from_everything, derive_studies, rebuild_studies
from tests.tables import commit_files


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


@pytest.mark.parametrize("seed", range(60))
def test_studies_derived_for_what_each_ingest_added_equal_studies_derived_from_everything(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three arrivals, each a new file per table under a random name (so a new file may come first in the
    table's order): after each, studies/ and its counts are what a derivation from every row gives."""
    from radpipe.ingest import studies as module

    instances, images, volumes, reports, previous = _tables(seed)
    rng = random.Random(seed + 1000)
    store = DatasetStore(str(tmp_path / "dataset"))
    incremental = []
    derive_for_added = module._derive_for_added
    monkeypatch.setattr(
        module, "_derive_for_added", lambda *a: incremental.append(derive_for_added(*a)) or incremental[-1]
    )
    _write(store, "studies", _arrow(previous, "studies", ["study_instance_uid", "split"]), rng)
    sources = {
        "instances": _arrow(
            instances, "instances", ["study_instance_uid", "patient_id", "accession_number", "is_synthetic"]
        ),
        "images": _arrow([{"study_instance_uid": uid} for uid in images], "images", ["study_instance_uid"]),
        "volumes": _arrow(volumes, "volumes", ["study_instance_uid", "issues"]),
        "reports": _arrow(reports, "reports", ["report_id", "study_instance_uid", "accession_number"]),
    }
    cuts = {table: sorted(rng.randint(0, len(rows)) for _ in range(2)) for table, rows in sources.items()}
    for step in range(3):
        for table, rows in sources.items():
            bounds = [0, *cuts[table], len(rows)]
            _write(store, table, rows.slice(bounds[step], bounds[step + 1] - bounds[step]), rng)
        expected, links = derive_from_everything(store)  # the oracle: every row read
        assert rebuild_studies(store) == links, step
        held = store.read_table("studies").sort_by("study_instance_uid")
        assert held.to_pylist() == expected.to_pylist(), step
    assert (
        len([found for found in incremental if found is not None]) == 2
    )  # the second and third derived what was added


def _write(store: DatasetStore, table: str, rows: pa.Table, rng: random.Random) -> None:
    """One arrival: a file under a random name, committed as ingest commits it."""
    folder = Path(store.path(table))
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{rng.getrandbits(32):08x}.parquet"
    full = pa.Table.from_pylist(rows.to_pylist(), schema=TABLES[table])
    pq.write_table(full, folder / name)
    commit_files(folder, name)


def test_a_report_that_moves_to_its_own_study_leaves_the_study_it_reached_by_accession(tmp_path: Path) -> None:
    """Report R names study S and carries T's accession: it links to T until S's images arrive, then to S."""
    rng = random.Random(5)
    store = DatasetStore(str(tmp_path / "dataset"))
    columns = ["study_instance_uid", "patient_id", "accession_number", "is_synthetic"]
    _write(
        store, "instances", _arrow([{"study_instance_uid": "T", "accession_number": "A"}], "instances", columns), rng
    )
    report = [{"report_id": "R", "study_instance_uid": "S", "accession_number": "A"}]
    _write(store, "reports", _arrow(report, "reports", ["report_id", "study_instance_uid", "accession_number"]), rng)
    rebuild_studies(store)
    assert {r["study_instance_uid"]: r["report_id"] for r in store.read_table("studies").to_pylist()} == {"T": "R"}

    _write(
        store, "instances", _arrow([{"study_instance_uid": "S", "accession_number": "B"}], "instances", columns), rng
    )
    links = rebuild_studies(store)
    held = {r["study_instance_uid"]: r["report_id"] for r in store.read_table("studies").to_pylist()}
    assert held == {"S": "R", "T": None} and (links.studies, links.reports_linked) == (2, 1)
