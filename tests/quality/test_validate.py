"""Validation with real Great Expectations: a fresh dataset passes; each kind of damage is named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from radpipe.commands import phi_gate
from radpipe.dataset.store import DatasetStore
from radpipe.quality.status import last_validation
from radpipe.quality.validate import validate_dataset
from tests.tables import commit_files, read_delta

pytestmark = [pytest.mark.integration]


def _rewrite(path: Path, change) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _first(dataset: Path, table: str) -> Path:
    """The table's first current data file (rewritten in place below: damage done behind Delta's back)."""
    return Path(DatasetStore(str(dataset)).table_files(table)[0])


def _failed(report) -> set[tuple[str, str, str]]:
    return {(f.suite, f.expectation, f.column) for f in report.failures}


def test_a_fresh_dataset_passes_and_has_data_docs(fresh_dataset: Path) -> None:
    report = validate_dataset(str(fresh_dataset))
    assert report.passed, report.failures
    index = Path(report.data_docs)
    assert index.name == "index.html" and index.exists()
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) == report.batches + 1  # every batch, and the dataset-wide suite
    assert "must never be null" in pages[0].read_text()
    assert last_validation(str(fresh_dataset))["passed"] is True


def test_nulls_and_negative_sizes_are_named(fresh_dataset: Path) -> None:
    def damage(table: pa.Table) -> pa.Table:
        patient = table.column("patient_id").to_pylist()
        patient[0] = None
        rows = table.column("rows").to_pylist()
        rows[-1] = -5
        table = table.set_column(table.schema.get_field_index("patient_id"), "patient_id", pa.array(patient))
        return table.set_column(table.schema.get_field_index("rows"), "rows", pa.array(rows, pa.int32()))

    _rewrite(_first(fresh_dataset, "instances"), damage)
    phi_gate(str(fresh_dataset))
    report = validate_dataset(str(fresh_dataset))
    assert not report.passed
    failed = _failed(report)
    assert ("instances", "expect_column_values_to_not_be_null", "patient_id") in failed
    assert ("instances", "expect_column_values_to_be_between", "rows") in failed


def test_a_duplicated_uid_across_files_fails_the_dataset_suite(fresh_dataset: Path) -> None:
    source = _first(fresh_dataset, "instances")
    (fresh_dataset / "instances" / "part-copy.parquet").write_bytes(source.read_bytes())
    commit_files(fresh_dataset / "instances", "part-copy.parquet")
    phi_gate(str(fresh_dataset))
    report = validate_dataset(str(fresh_dataset))
    assert ("dataset", "expect_column_values_to_be_between", "duplicate_sop_instance_uids") in _failed(report)
    assert report.metrics["duplicate_sop_instance_uids"] > 0


def test_a_patient_in_two_splits_fails(fresh_dataset: Path) -> None:
    studies = read_delta(fresh_dataset / "studies")
    patients = studies.column("patient_id").to_pylist()
    twice = next(p for p in patients if patients.count(p) > 1)
    index = patients.index(twice)
    splits = studies.column("split").to_pylist()
    splits[index] = "test" if splits[index] != "test" else "train"
    damaged = studies.set_column(studies.schema.get_field_index("split"), "split", pa.array(splits))
    pq.write_table(damaged, _first(fresh_dataset, "studies"))
    report = validate_dataset(str(fresh_dataset))
    assert ("dataset", "expect_column_values_to_be_between", "patients_in_several_splits") in _failed(report)


def test_images_of_the_wrong_shape_fail(fresh_dataset: Path) -> None:
    def damage(table: pa.Table) -> pa.Table:
        shapes = table.column("shape").to_pylist()
        shapes[0] = [112, 448]
        return table.set_column(table.schema.get_field_index("shape"), "shape", pa.array(shapes, pa.list_(pa.int32())))

    _rewrite(_first(fresh_dataset, "images"), damage)
    phi_gate(str(fresh_dataset))
    failed = _failed(validate_dataset(str(fresh_dataset)))
    assert ("images", "expect_column_values_to_be_in_set", "shape_h") in failed


def test_the_command_exits_1_naming_the_expectation(fresh_dataset: Path) -> None:
    _rewrite(
        _first(fresh_dataset, "studies"),
        lambda t: t.set_column(
            t.schema.get_field_index("split"),
            "split",
            pc.if_else(pc.equal(t.column("split"), "train"), None, t.column("split")),
        ),
    )
    result = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "validate", str(fresh_dataset)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "FAILED studies: expect_column_values_to_not_be_null(split)" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_dataset_changed_after_its_gate_is_refused(fresh_dataset: Path) -> None:
    from radpipe.deid.gate import PhiGateFailed

    source = _first(fresh_dataset, "reports")
    (fresh_dataset / "reports" / "part-late.parquet").write_bytes(source.read_bytes())
    commit_files(fresh_dataset / "reports", "part-late.parquet")
    with pytest.raises(PhiGateFailed, match="changed since its last PHI gate"):
        validate_dataset(str(fresh_dataset))
