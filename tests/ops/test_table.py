"""The ops table: append-only, atomic, one schema, and nothing in it that could identify a patient."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from radpipe.deid.gate import PhiGateFailed
from radpipe.errors import SourceError
from radpipe.ingest.summary import IngestSummary
from radpipe.ops import OPS_SCHEMA, OpsRow, append_ops_row, ops_row, read_ops
from radpipe.ops import table as ops_table
from radpipe.ops.facts import RunFacts, chain_facts
from radpipe.quality.status import ValidationFailed
from radpipe.quality.validate import ValidationReport
from radpipe.train.run import TrainSummary

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
INGEST_SUMMARY = IngestSummary(
    files_seen=12,
    files_in=12,
    instances_added=9,
    quarantined=Counter({"unreadable": 2, "duplicate": 1}),
    reports_quarantined=Counter({"no_text": 1}),
)


def _row(run: str, minutes: int, **fields: Any) -> OpsRow:
    return OpsRow(
        flow="ingest",
        run_id=run,
        started_at=T0 + timedelta(minutes=minutes),
        duration_s=1.5,
        status="completed",
        **fields,
    )


def test_rows_append_as_new_files_and_read_back_oldest_first(tmp_path: Path) -> None:
    first = append_ops_row(tmp_path, _row("b", 10, files_seen=3))
    second = append_ops_row(tmp_path, _row("a", 0, files_seen=5, quarantine_reasons={"unreadable": 1}))
    assert first != second and first.exists() and second.exists()
    assert pq.read_table(first).num_rows == 1  # the first file is never rewritten
    table = read_ops(tmp_path)
    assert table.schema.equals(OPS_SCHEMA)
    rows = table.to_pylist()
    assert [r["run_id"] for r in rows] == ["a", "b"]
    assert rows[0]["files_seen"] == 5 and json.loads(rows[0]["quarantine_reasons"]) == {"unreadable": 1}
    assert rows[0]["started_at"] == T0


def test_an_empty_home_reads_as_an_empty_table_with_the_schema(tmp_path: Path) -> None:
    table = read_ops(tmp_path)
    assert table.num_rows == 0 and table.schema.equals(OPS_SCHEMA)


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    append_ops_row(tmp_path, _row("kept", 0))

    def crash(table: object, where: Path) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ops_table.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        append_ops_row(tmp_path, _row("lost", 1))
    monkeypatch.undo()
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "ops").iterdir()) == ["part"]
    assert [r["run_id"] for r in read_ops(tmp_path).to_pylist()] == ["kept"]


def test_a_file_being_written_is_not_read(tmp_path: Path) -> None:
    append_ops_row(tmp_path, _row("done", 0))
    (tmp_path / "ops" / ".tmp-20250301-x.parquet").write_bytes(b"PAR1 still being written")
    assert read_ops(tmp_path).num_rows == 1


def test_unknown_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="patient_id"):
        append_ops_row(tmp_path, {**_row("x", 0).record(), "patient_id": "MRN123"})


def test_ops_is_a_file_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "ops").write_text("")
    with pytest.raises(SourceError, match="not a folder"):
        read_ops(tmp_path)


def test_no_column_could_hold_phi() -> None:
    forbidden = ("patient", "accession", "name", "birth", "path", "source", "text", "detail", "message")
    assert not [c for c in OPS_SCHEMA.names if any(word in c for word in forbidden)]


def test_a_failure_keeps_the_error_type_never_its_message_nor_the_source_paths(tmp_path: Path) -> None:
    secret = "/archive/DOE^JANE/MRN-998877"
    parameters = {"dicom": secret, "reports": secret + ".jsonl", "dataset": str(tmp_path / "ds")}
    row = ops_row(
        "ingest", "r1", T0, T0 + timedelta(seconds=3), parameters, error=SourceError(f"does not exist: {secret}")
    )
    append_ops_row(tmp_path, row)
    stored = read_ops(tmp_path).to_pylist()[0]
    assert stored["status"] == "failed" and stored["error"] == "SourceError" and stored["duration_s"] == 3.0
    assert stored["dataset"] == str(tmp_path / "ds")
    assert "DOE" not in json.dumps(stored, default=str) and "998877" not in json.dumps(stored, default=str)


def test_an_ingest_summary_becomes_counts_by_reason() -> None:
    row = ops_row("ingest", "r1", T0, T0, {"dataset": "s3://b/ds"}, result=INGEST_SUMMARY.record())
    assert (row.files_seen, row.files_ingested, row.files_quarantined) == (12, 9, 3)
    assert row.quarantine_reasons == {"unreadable": 2, "duplicate": 1, "report:no_text": 1}
    assert row.phi_gate == "passed" and row.validation == "none" and row.status == "completed"


def test_gate_and_validation_failures_are_recorded_as_such() -> None:
    gate = ops_row("ingest", "r", T0, T0, {}, error=PhiGateFailed("PHI gate failed: in reports.text"))
    assert gate.phi_gate == "failed" and gate.status == "failed" and gate.error == "PhiGateFailed"
    suite = ops_row("curate-validate", "r", T0, T0, {}, error=ValidationFailed("x"))
    assert suite.validation == "failed" and suite.phi_gate == "none"
    other = ops_row("curate-validate", "r", T0, T0, {}, error=RuntimeError("x"))
    assert other.validation == "none"


def test_the_chain_records_every_step_it_reports() -> None:
    trained = TrainSummary(
        run_id="m1",
        model_uri="models:/radpipe-foundation/4",
        model_version="4",
        dataset_version="abc123",
        profile="cxr-224",
        steps=10,
        resumed_from_step=0,
        metrics={"train_loss": 1.5, "system/cpu": 50.0},
    )
    validation = ValidationReport(passed=True, dataset_version="abc123", batches=3)
    facts = chain_facts(
        INGEST_SUMMARY.record(),
        {"validation": validation.record(), "facts": validation.record()["facts"]},
        trained.record(),
        [{"model_uri": "models:/radpipe-pneumothorax/1"}],
        "models:/radpipe-foundation/4",
    )
    row = ops_row("pipeline", "r", T0, T0, {"dataset": "/d"}, result={"facts": facts.record()})
    assert row.files_ingested == 9 and row.validation == "passed" and row.dataset_version == "abc123"
    assert row.metrics == {"train_loss": 1.5} and row.mlflow_run_id == "m1"
    assert row.model_versions == ["models:/radpipe-foundation/4", "models:/radpipe-pneumothorax/1"]
    assert row.champion == "models:/radpipe-foundation/4"


def test_a_record_is_json_and_reads_back_as_the_same_row() -> None:
    """A flow's return value passes through Prefect's result handling: plain JSON, no Counter or tuple."""
    record = INGEST_SUMMARY.record()
    assert json.loads(json.dumps(record)) == record
    before = ops_row("ingest", "run-1", T0, T0, {"dataset": "d"}, result=record)
    after = ops_row("ingest", "run-1", T0, T0, {"dataset": "d"}, result=json.loads(json.dumps(record)))
    assert before == after and before.quarantine_reasons == {"unreadable": 2, "duplicate": 1, "report:no_text": 1}


def test_facts_of_a_later_step_win_and_models_are_listed_once() -> None:
    first = RunFacts(dataset_version="a", metrics={"x": 1.0}, model_versions=("m/1",), validation="passed")
    later = RunFacts(dataset_version="b", metrics={"y": 2.0}, model_versions=("m/1", "m/2"))
    joined = first.then(later)
    assert joined.dataset_version == "b" and joined.metrics == {"x": 1.0, "y": 2.0}
    assert joined.model_versions == ("m/1", "m/2") and joined.validation == "passed"
