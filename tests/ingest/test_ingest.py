"""Ingest on a real local Dask cluster: accounting, quarantine reasons, idempotence, readers, privacy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from radpipe.commands import ingest_sources
from radpipe.deid import Deidentifier
from radpipe.synth import write_archive
from tests.ingest.badfiles import add_bad_files, add_bad_reports
from tests.tables import read_delta

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TABLES = ("instances", "images", "reports", "studies", "quarantine")


@pytest.fixture(scope="module")
def ingested(archive: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("ingest")
    shutil.copytree(archive, work / "src")
    expected = add_bad_files(work / "src" / "dicom")
    bad_report_lines = add_bad_reports(work / "src" / "reports")
    dataset = work / "dataset"
    first = ingest_sources(str(work / "src" / "dicom"), str(work / "src" / "reports"), str(dataset), "cxr-224")
    return work, dataset, first, expected, bad_report_lines


def _rows(dataset: Path, table: str) -> list[dict]:
    return read_delta(dataset / table).to_pylist()


def test_every_file_is_accounted_for(ingested) -> None:
    work, dataset, summary, expected, _ = ingested
    all_files = [p for p in (work / "src" / "dicom").rglob("*") if p.is_file()]
    good = len(all_files) - len(expected)
    assert summary.files_in == len(all_files)
    assert summary.instances_added == good
    assert summary.files_in == summary.instances_added + summary.quarantined_files
    assert len(_rows(dataset, "instances")) == len(_rows(dataset, "images")) == good
    dicom_quarantine = [r for r in _rows(dataset, "quarantine") if r["stage"] != "report"]
    assert len(dicom_quarantine) == len(expected)


def test_each_bad_file_gets_its_reason(ingested, deid: Deidentifier) -> None:
    _, dataset, _, expected, _ = ingested
    by_key = {r["source_key"]: r for r in _rows(dataset, "quarantine")}
    for path, reason in expected.items():
        row = by_key[deid.pseudonymizer.source_key("file://" + path)]
        assert row["reason"] == reason, (Path(path).name, row)
        assert row["detail"]


def test_reports_are_parsed_linked_and_bad_lines_quarantined(ingested, archive: Path) -> None:
    _, dataset, summary, _, bad_lines = ingested
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    good_reports = sum(t["has_report"] for t in truth) + 2  # + NOPE1 and the CSV row
    assert summary.reports_added == good_reports
    report_quarantine = [r for r in _rows(dataset, "quarantine") if r["stage"] == "report"]
    assert sorted(r["reason"] for r in report_quarantine) == sorted(
        ["parse_error", "missing_text", "missing_key", "unsupported_format"]
    )
    assert len(report_quarantine) == bad_lines
    linkable = sum(t["has_report"] and t["has_images"] for t in truth)
    assert summary.reports_linked == linkable
    assert summary.reports_orphaned == good_reports - linkable  # kept, waiting for their images
    studies = _rows(dataset, "studies")
    assert sum(s["has_report"] for s in studies) == linkable
    assert all(s["is_synthetic"] and s["split"] is None for s in studies)


def test_tables_read_back_without_radpipe(ingested) -> None:
    _, dataset, _, _, _ = ingested
    for table in TABLES:
        if not (dataset / table).exists():
            continue
        n_delta = DeltaTable(str(dataset / table)).count()
        n_polars = pl.scan_delta(str(dataset / table)).select(pl.len()).collect().item()
        arrow = DeltaTable(str(dataset / table)).to_pyarrow_dataset()
        n_arrow = arrow.count_rows()
        n_duckdb = duckdb.sql("select count(*) from arrow").fetchall()[0][0]  # DuckDB, no delta extension
        assert n_delta == n_polars == n_arrow == n_duckdb > 0, table
    import numpy as np

    row = pl.read_delta(str(dataset / "images")).row(0, named=True)
    pixels = np.frombuffer(row["pixels"], row["dtype"]).reshape(row["shape"])
    assert pixels.shape == (224, 224) and pixels.std() > 10


def test_no_source_identifier_or_path_in_any_table(ingested, archive: Path) -> None:
    work, dataset, _, _, _ = ingested
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    secrets = {t["patient_id"] for t in truth} | {t["accession_number"] for t in truth}
    secrets |= {t["study_instance_uid"] for t in truth}
    secrets |= {v for t in truth for v in t["phi"] if len(v) > 3}
    secrets |= {p.name for p in (work / "src" / "dicom").iterdir()}  # folder names hold names and MRNs
    secrets.add(str(work))
    for table in ("instances", "images", "reports", "studies", "quarantine", "_ledger"):
        text = json.dumps(
            pq.read_table(dataset / table)  # every data file, those only older versions name too
            .drop_columns(
                [c for c in ("pixels",) if c in pq.read_schema(next((dataset / table).glob("*.parquet"))).names]
            )
            .to_pylist(),
            default=str,
        )
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, (table, len(leaked))  # never print the values themselves


def test_no_planted_phi_in_report_text(ingested, archive: Path) -> None:
    _, dataset, _, _, _ = ingested
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    text = " ".join(r["text"] for r in _rows(dataset, "reports"))
    assert not [v for t in truth for v in t["phi"] if v in text]


def test_rerun_adds_nothing_and_a_new_file_adds_exactly_its_rows(ingested, tmp_path: Path) -> None:
    work, dataset, _, _, _ = ingested
    counts = {t: len(_rows(dataset, t)) for t in TABLES}
    again = ingest_sources(str(work / "src" / "dicom"), str(work / "src" / "reports"), str(dataset), "cxr-224")
    assert again.files_in == 0 and again.instances_added == 0 and again.reports_added == 0
    assert again.files_skipped == again.files_seen
    assert {t: len(_rows(dataset, t)) for t in TABLES} == counts

    write_archive(tmp_path / "new", studies=1, seed=99)
    new_files = sorted((tmp_path / "new" / "dicom").rglob("*.dcm"))
    target = work / "src" / "dicom" / "arrived_later"
    target.mkdir()
    for path in new_files:
        shutil.copy(path, target / path.name)
    third = ingest_sources(str(work / "src" / "dicom"), None, str(dataset), "cxr-224")
    assert third.files_in == third.instances_added == len(new_files)
    assert len(_rows(dataset, "instances")) == counts["instances"] + len(new_files)
    assert len(_rows(dataset, "studies")) == counts["studies"] + 1
