"""MLflow, the one module that talks to it: runs, metrics, dataset lineage, model registry."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric

from radpipe.settings import Settings


def configure(settings: Settings) -> str:
    """Point MLflow at the configured server, or the embedded SQLite file under RADPIPE_HOME."""
    settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.tracking_uri
    mlflow.set_tracking_uri(uri)
    return uri


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow params: {"train.lr": "0.0003", ...}."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


def git_commit() -> str:
    """The code's commit, for the model's tags; 'unknown' outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() if head.returncode == 0 else "unknown"


def start_run(experiment: str, run_name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """Create a run (not left active in this process: the training workers log into it); returns its id."""
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags)) as run:
        mlflow.log_params(dict(params))
    MlflowClient().update_run(run.info.run_id, status="RUNNING")
    return run.info.run_id


def log_dataset_input(run_id: str, uri: str, version: str, profile: str, rows: Mapping[str, int]) -> None:
    """Lineage: the dataset (its URI and version digest) as the run's training input."""
    with warnings.catch_warnings():  # MLflow warns that a local path is not an artifact repository URI
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(uri)
    dataset = MetaDataset(  # type: ignore[abstract]  # MLflow declares `profile` abstract, yet builds these itself
        source, name=f"radpipe:{Path(uri.rstrip('/')).name}", digest=version
    )
    tags = {"profile": profile, **{f"rows_{split}": str(n) for split, n in rows.items()}}
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(dataset, context="training", tags=tags)


class MetricLogger:
    """Metrics from the rank-0 training worker, with MLflow's system metrics (CPU, memory, GPU)."""

    def __init__(self, tracking_uri: str, run_id: str, system_metrics: bool = True) -> None:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_system_metrics_sampling_interval(5)
        self._run = mlflow.start_run(run_id=run_id, log_system_metrics=system_metrics)
        self._client = MlflowClient(tracking_uri)
        self._run_id = run_id

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        now = _now_ms()
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self._client.log_batch(self._run_id, metrics=batch, synchronous=True)

    def close(self) -> None:
        mlflow.end_run()


def log_model(
    run_id: str,
    python_model: Any,
    artifacts: Mapping[str, str],
    signature: Any,
    registered_model: str,
    tags: Mapping[str, str],
    input_example: Any = None,
) -> tuple[str, str]:
    """Log a pyfunc model into the run and register it; returns (model version, models:/ URI)."""
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            artifacts=dict(artifacts),
            signature=signature,
            input_example=input_example,
            registered_model_name=registered_model,
            tags=dict(tags),
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered_model, version, key, value)
    client.set_terminated(run_id, "FINISHED")
    return version, f"models:/{registered_model}/{version}"


def fail_run(run_id: str) -> None:
    MlflowClient().set_terminated(run_id, "FAILED")


def run_metrics(run_id: str) -> dict[str, float]:
    return dict(MlflowClient().get_run(run_id).data.metrics)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
