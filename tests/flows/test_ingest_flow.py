import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.ingest import ingest_flow, retry_on_io_error
from radpipe.errors import SourceError
from tests.tables import commit_files, read_delta

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_flow_ingests_and_a_second_run_adds_nothing(archive: Path, tmp_path: Path) -> None:
    shutil.copytree(archive, tmp_path / "src")
    dataset = tmp_path / "dataset"
    first = ingest_flow(str(tmp_path / "src" / "dicom"), str(tmp_path / "src" / "reports"), str(dataset))
    n_files = sum(1 for p in (tmp_path / "src" / "dicom").rglob("*") if p.is_file())
    assert first["instances_added"] == n_files and first["balanced"]
    assert read_delta(dataset / "instances").num_rows == n_files
    second = ingest_flow(str(tmp_path / "src" / "dicom"), str(tmp_path / "src" / "reports"), str(dataset))
    assert second["files_in"] == 0 and second["instances_added"] == 0


def test_flow_fails_on_a_missing_source_without_retrying(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        ingest_flow(str(tmp_path / "missing"), None, str(tmp_path / "dataset"))


class _State:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self):
        raise self.exc


def test_only_io_errors_are_retried() -> None:
    assert retry_on_io_error(None, None, _State(ConnectionResetError("peer reset")))
    assert not retry_on_io_error(None, None, _State(SourceError("bad input")))
    assert not retry_on_io_error(None, None, _State(ValueError("bug")))


def test_a_phi_gate_hit_is_withheld_and_fails_a_run_that_added_nothing(tmp_path: Path) -> None:
    import json

    import pyarrow as pa

    from radpipe.dataset.schema import QUARANTINE, REPORTS
    from radpipe.deid.gate import PhiGateFailed
    from radpipe.synth import write_archive

    archive = tmp_path / "archive"
    write_archive(archive, studies=4, seed=41, phi=True)
    dataset = tmp_path / "dataset"
    ingest_flow(str(archive / "dicom"), str(archive / "reports"), str(dataset))
    # Something (a bug, a hand edit) puts a patient's MRN into two tables. The next run withholds the report
    # and redacts the detail; withholding a record in a run that added none is past any threshold: it fails.
    mrn = json.loads((archive / "truth.jsonl").read_text().splitlines()[0])["patient_id"]
    (dataset / "quarantine").mkdir(exist_ok=True)
    row = {"source_key": "x", "stage": "read", "reason": "unreadable", "detail": f"file of {mrn}", "position": 0}
    pq.write_table(pa.Table.from_pylist([row], schema=QUARANTINE), dataset / "quarantine" / "part-x.parquet")
    commit_files(dataset / "quarantine", "part-x.parquet")
    report = {"report_id": "x", "text": f"Prior study of MRN {mrn}."}
    pq.write_table(pa.Table.from_pylist([report], schema=REPORTS), dataset / "reports" / "part-x.parquet")
    commit_files(dataset / "reports", "part-x.parquet")
    with pytest.raises(PhiGateFailed, match=r"1 records withheld for identifiers \(.*reports\.text"):
        ingest_flow(str(archive / "dicom"), str(archive / "reports"), str(dataset))
    gate = json.loads((dataset / "_gate.json").read_text())
    assert gate["passed"] is False and gate["withheld"] == {"identifier_in_text": 1}
    tables = [read_delta(dataset / t).to_pylist() for t in ("quarantine", "reports")]
    assert mrn not in json.dumps(tables)  # withheld and redacted, not just reported
