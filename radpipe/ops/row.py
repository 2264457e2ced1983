"""One flow run as an ops row, built from the summary the flow returned (pure: no Prefect, no I/O).

Only counts, URIs, versions and metric values go in: never a source path, an identifier or an error
message (which can quote a path); a failure is recorded by its exception type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from radpipe.deid.gate import PhiGateFailed
from radpipe.evaluate.protocol import HEADLINE
from radpipe.quality.status import ValidationFailed

PASSED, FAILED, NONE = "passed", "failed", "none"
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
    """The row of a finished run: `result` is the flow's return value, `error` what it raised."""
    fields: dict[str, Any] = {"dataset": parameters.get("dataset")}
    if error is None and isinstance(result, Mapping):
        fields.update(_FROM_RESULT.get(flow, _nothing)(result))
    elif error is not None:
        fields.update(_from_failure(flow, error))
    return OpsRow(
        flow=flow,
        run_id=run_id,
        started_at=started_at,
        duration_s=max(0.0, (finished_at - started_at).total_seconds()),
        status=COMPLETED if error is None else FAILED,
        error=None if error is None else type(error).__name__,
        **fields,
    )


def _from_failure(flow: str, error: BaseException) -> dict[str, Any]:
    if isinstance(error, PhiGateFailed):
        return {"phi_gate": FAILED}
    if isinstance(error, ValidationFailed):
        # The chain gates before it validates: reaching validation means the gate passed.
        return {"validation": FAILED, **({"phi_gate": PASSED} if flow == "pipeline" else {})}
    return {}


def _nothing(_result: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _counts(value: Any) -> dict[str, int]:
    """reason -> count, without zeros, from a mapping or from a Counter that came back through Prefect's
    result serialisation as a Counter of its own (reason, count) pairs."""
    out: dict[str, int] = {}
    items = value.items() if isinstance(value, Mapping) else [(v, 1) for v in (value or [])]
    for key, count in items:
        if isinstance(key, tuple | list) and len(key) == 2:
            key, count = key
        if int(count):
            out[str(key)] = out.get(str(key), 0) + int(count)
    return out


def _ingest(summary: Mapping[str, Any]) -> dict[str, Any]:
    reasons = _counts(summary.get("quarantined"))
    reasons.update({f"report:{k}": v for k, v in _counts(summary.get("reports_quarantined")).items()})
    reasons.update({f"withheld:{k}": v for k, v in _counts(summary.get("withheld")).items()})  # by the PHI gate
    return {
        "files_seen": summary.get("files_seen"),
        "files_ingested": summary.get("instances_added"),
        "files_quarantined": summary.get("quarantined_files", sum((summary.get("quarantined") or {}).values())),
        "quarantine_reasons": reasons,
        "phi_gate": PASSED,  # the ingest flow completes only through the gate
        # Counted only when there are some: reports whose language the labeller has no rules for.
        "metrics": {"reports_unlabelled_language": n} if (n := _unlabelled(summary)) else {},
    }


def _unlabelled(summary: Mapping[str, Any]) -> float:
    """Reports stored with null labels: their language has no labeller rules."""
    return float(sum(_counts(summary.get("reports_unlabelled_language")).values()))


def _validation(result: Mapping[str, Any]) -> dict[str, Any]:
    validation = result.get("validation") or {}
    return {"validation": PASSED, "dataset_version": validation.get("dataset_version")}


def _metrics(values: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if not k.startswith("system/") and (keys is None or k in keys) and isinstance(v, int | float)
    }


def _train(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "dataset_version": summary.get("dataset_version"),
        "metrics": _metrics(summary.get("metrics") or {}),
        "mlflow_run_id": summary.get("run_id"),
        "model_versions": [summary["model_uri"]] if summary.get("model_uri") else [],
    }


def _evaluate(result: Mapping[str, Any]) -> dict[str, Any]:
    evaluation = result.get("evaluation") or {}
    promotion = result.get("promotion")
    return {
        "dataset_version": evaluation.get("dataset_version"),
        "metrics": _metrics(evaluation.get("metrics") or {}, HEADLINE),
        "model_versions": [evaluation["model_uri"]] if evaluation.get("model_uri") else [],
        "champion": promotion.get("champion_now") if promotion else None,
    }


def _finetune(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "dataset_version": summary.get("dataset_version"),
        "metrics": _metrics(summary.get("metrics") or {}),
        "model_versions": [summary["model_uri"]] if summary.get("model_uri") else [],
    }


def _embed(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metrics": {"images": float(summary.get("images", 0))},
        "model_versions": [summary["model_uri"]] if summary.get("model_uri") else [],
    }


def _pipeline(result: Mapping[str, Any]) -> dict[str, Any]:
    trained = _train(result.get("trained") or {})
    finetuned = [t["model_uri"] for t in result.get("finetunes") or [] if t.get("model_uri")]
    ingested = _ingest(result.get("ingest") or {})
    return {
        **ingested,
        **_validation(result),
        **trained,
        "metrics": {**ingested["metrics"], **trained.get("metrics", {})},
        "model_versions": trained["model_versions"] + finetuned,
        "champion": result.get("champion"),
    }


def _nightly(result: Mapping[str, Any]) -> dict[str, Any]:
    return {**_ingest(result.get("ingest") or {}), **_validation(result)}


def _weekly(result: Mapping[str, Any]) -> dict[str, Any]:
    trained = _train(result.get("trained") or {})
    return {**trained, "champion": (result.get("promotion") or {}).get("champion_now")}


_FROM_RESULT: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "nightly-ingest": _nightly,
    "weekly-train": _weekly,
    "ingest": _ingest,
    "curate-validate": _validation,
    "train": _train,
    "evaluate-promote": _evaluate,
    "finetune": _finetune,
    "embed": _embed,
    "pipeline": _pipeline,
}
