"""One flow run as an ops row, built from the summary the flow returned (pure: no Prefect, no I/O).

Only counts, URIs, versions and metric values go in: never a source path, an identifier or an error
message (which can quote a path); a failure is recorded by its exception type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from radpipe.deid.gate import PhiGateFailed
from radpipe.ops.facts import FACTS, FAILED, NONE, PASSED, RunFacts
from radpipe.quality.status import ValidationFailed

COMPLETED = "completed"


@dataclass(frozen=True)
class OpsRow:
    """What an operator asks of one flow run; see OPS_SCHEMA in radpipe/ops/table.py for the columns."""

    flow: str  # the Prefect flow name: ingest, curate-validate, train, evaluate-promote, finetune, embed, pipeline
    run_id: str  # the Prefect flow run id, to find the run in the UI
    started_at: datetime  # timezone-aware (UTC)
    duration_s: float
    status: str  # completed | failed
    error: str | None = None  # the exception type of a failed run; its message may quote a path, so not kept
    dataset: str | None = None  # the dataset URI the flow worked on (the user's own path or bucket)
    dataset_version: str | None = None  # the validated version digest, when the flow knows it
    files_seen: int | None = None
    files_ingested: int | None = None
    files_quarantined: int | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # reason -> files (reports as report:<reason>)
    phi_gate: str = NONE  # passed | failed | none (the flow did not run the gate)
    validation: str = NONE  # passed | failed | none (the flow did not validate)
    metrics: dict[str, float] = field(default_factory=dict)  # last training/evaluation/fine-tune values
    mlflow_run_id: str | None = None  # the pretraining run, whose curves the dashboard draws
    model_versions: list[str] = field(default_factory=list)  # models:/<name>/<version> the run made or judged
    champion: str | None = None  # models:/... holding @champion after the run, when the run decided it

    def record(self) -> dict[str, Any]:
        """The row as the table stores it (dicts and lists as JSON strings)."""
        return {
            "flow": self.flow,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "duration_s": float(self.duration_s),
            "status": self.status,
            "error": self.error,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "files_seen": self.files_seen,
            "files_ingested": self.files_ingested,
            "files_quarantined": self.files_quarantined,
            "quarantine_reasons": json.dumps(dict(sorted(self.quarantine_reasons.items()))),
            "phi_gate": self.phi_gate,
            "validation": self.validation,
            "metrics": json.dumps(dict(sorted(self.metrics.items()))),
            "mlflow_run_id": self.mlflow_run_id,
            "model_versions": json.dumps(list(self.model_versions)),
            "champion": self.champion,
        }


def ops_row(
    flow: str,
    run_id: str,
    started_at: datetime,
    finished_at: datetime,
    parameters: Mapping[str, Any],
    result: Any = None,
    error: BaseException | None = None,
) -> OpsRow:
    """The row of a finished run: `result` is the flow's return value (a record holding its facts), `error`
    what it raised."""
    if error is not None:
        facts = _failure_facts(flow, error)
    elif isinstance(result, Mapping):
        facts = RunFacts.from_record(result.get(FACTS))
    else:
        facts = RunFacts()
    return OpsRow(
        flow=flow,
        run_id=run_id,
        started_at=started_at,
        duration_s=max(0.0, (finished_at - started_at).total_seconds()),
        status=COMPLETED if error is None else FAILED,
        error=None if error is None else type(error).__name__,
        dataset=parameters.get("dataset"),
        **facts.record(),
    )


def _failure_facts(flow: str, error: BaseException) -> RunFacts:
    if isinstance(error, PhiGateFailed):
        return RunFacts(phi_gate=FAILED)
    if isinstance(error, ValidationFailed):
        # The chain gates before it validates: reaching validation means the gate passed.
        return RunFacts(validation=FAILED, phi_gate=PASSED if flow == "pipeline" else NONE)
    return RunFacts()
