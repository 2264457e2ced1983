"""Every flow run leaves its ops row: the counts it reports, its Prefect run id, and failures too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.ingest import ingest_flow
from radpipe.ops import read_ops
from radpipe.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _plain(counts: dict) -> dict:
    """Reasons with a non-zero count (the flow's record is plain JSON: reason -> count)."""
    return {reason: n for reason, n in counts.items() if n}


def _row_of(state) -> dict:
    run_id = str(state.state_details.flow_run_id)
    rows = [r for r in read_ops(get_settings().home).to_pylist() if r["run_id"] == run_id]
    assert len(rows) == 1, f"{len(rows)} ops rows for flow run {run_id}"
    return rows[0]


def test_an_ingest_run_records_its_counts_and_run_id(archive: Path, tmp_path: Path) -> None:
    shutil.copytree(archive, tmp_path / "src")
    dataset = tmp_path / "dataset"
    state = ingest_flow(
        str(tmp_path / "src" / "dicom"), str(tmp_path / "src" / "reports"), str(dataset), return_state=True
    )
    summary = state.result()
    row = _row_of(state)
    assert row["flow"] == "ingest" and row["status"] == "completed" and row["error"] is None
    from mlflow import MlflowClient

    from radpipe import tracking

    client = MlflowClient(tracking.current_uri())  # the same row in MLflow, found by its Prefect run id
    [logged] = client.search_runs(
        [client.get_experiment_by_name(tracking.OPS_EXPERIMENT).experiment_id],
        filter_string=f"tags.prefect_flow_run_id = '{row['run_id']}'",
    )
    assert logged.data.metrics["files_ingested"] == summary["instances_added"]
    assert row["files_seen"] == summary["files_seen"] > 0
    assert row["files_ingested"] == summary["instances_added"] > 0
    assert row["files_quarantined"] == summary["quarantined_files"]
    assert json.loads(row["quarantine_reasons"]) == {
        **_plain(summary["quarantined"]),
        **{f"report:{k}": v for k, v in _plain(summary["reports_quarantined"]).items()},
    }
    assert row["phi_gate"] == "passed" and row["validation"] == "none" and row["dataset"] == str(dataset)
    assert row["duration_s"] > 0
    # The archive plants PHI in paths: the ops row holds the dataset URI, never a source path.
    assert str(tmp_path / "src") not in json.dumps(row, default=str)


def test_a_failed_run_records_status_failed(tmp_path: Path) -> None:
    missing = tmp_path / "missing-archive"
    state = ingest_flow(str(missing), None, str(tmp_path / "dataset"), return_state=True)
    assert state.is_failed()
    row = _row_of(state)
    assert row["status"] == "failed" and row["error"] == "SourceError"
    assert row["files_ingested"] is None and row["phi_gate"] == "none"
    assert str(missing) not in json.dumps(row, default=str)
