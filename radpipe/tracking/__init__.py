"""MLflow, the one package that talks to it: runs, metrics, dataset lineage (here), the model registry
(registry.py), and how its refusals reach the user (errors.py)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException

import radpipe
from radpipe.settings import Settings
from radpipe.tracking.errors import TrackingError, now_ms, tracking_errors
from radpipe.tracking.registry import (
    ModelRef,
    VersionInfo,
    alias_holder,
    load_python_model,
    registered_models,
    registry_versions,
    resolve_model,
    set_alias,
    set_version_tags,
)

__all__ = [
    "ModelRef",
    "TrackingError",
    "VersionInfo",
    "alias_holder",
    "load_python_model",
    "registered_models",
    "registry_versions",
    "resolve_model",
    "set_alias",
    "set_version_tags",
]

log = logging.getLogger(__name__)


# With a SQLite store MLflow would put artifacts in ./mlruns of whatever folder the command ran in;
# the embedded default keeps them under RADPIPE_HOME beside the database.
_artifact_root: str | None = None


def configure(settings: Settings) -> str:
    """Point MLflow at the configured server, or the embedded SQLite file under RADPIPE_HOME."""
    global _artifact_root
    settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.tracking_uri
    mlflow.set_tracking_uri(uri)
    # A new embedded store logs its table creation and migrations at INFO: noise on a user's first command
    # (and a one-line error that became three lines).
    for noisy in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _artifact_root = (settings.home / "mlartifacts").as_uri() if uri.startswith("sqlite:") else None
    return uri


def use(uri: str) -> None:
    """Point MLflow at an explicit store (the benchmark's own SQLite file)."""
    mlflow.set_tracking_uri(uri)


def current_uri() -> str:
    return str(mlflow.get_tracking_uri())


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


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, created when it does not exist yet.

    Another run may create it between the lookup and the creation (two scheduled flows starting on a new
    server), and a creation the server made but answered too slowly is sent again by MLflow's client: either
    way the server says RESOURCE_ALREADY_EXISTS, and the experiment is read again instead of failing the run.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"{_artifact_root}/{name}" if _artifact_root else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException as exc:
        found = client.get_experiment_by_name(name) if exc.error_code == "RESOURCE_ALREADY_EXISTS" else None
        if found is None:
            raise
        return str(found.experiment_id)


def start_run(experiment: str, run_name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """Create a RUNNING run (not active in this process: the training workers log into it); returns its id."""
    client = MlflowClient()
    with tracking_errors("create the run"):
        run = client.create_run(experiment_id(client, experiment), run_name=run_name, tags=dict(tags))
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()], synchronous=True)
    return run.info.run_id


def log_dataset_input(
    run_id: str, uri: str, version: str, profile: str, rows: Mapping[str, int], context: str = "training"
) -> None:
    """Lineage: the dataset (its URI and version digest) as the run's input (training, evaluation)."""
    with warnings.catch_warnings():  # MLflow warns that a local path is not an artifact repository URI
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(uri)
    # MLflow keeps one dataset per (name, digest) in an experiment: two copies of one version (local and s3://)
    # would share the first one's source. The name carries a short hash of the URI, so each keeps its own.
    where = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:8]
    dataset = MetaDataset(  # type: ignore[abstract]  # MLflow declares `profile` abstract, yet builds these itself
        source, name=f"radpipe:{Path(uri.rstrip('/')).name}-{where}", digest=version
    )
    tags = {"mlflow.data.context": context, "profile": profile, **{f"rows_{s}": str(n) for s, n in rows.items()}}
    entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(k, v) for k, v in tags.items()])
    with tracking_errors("record the dataset input"):
        MlflowClient().log_inputs(run_id, datasets=[entity])


class MetricLogger:
    """Metrics from the rank-0 training worker, with MLflow's system metrics (CPU, memory, GPU)."""

    def __init__(self, tracking_uri: str, run_id: str, system_metrics: bool = True) -> None:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_system_metrics_sampling_interval(5)
        self._run = mlflow.start_run(run_id=run_id, log_system_metrics=system_metrics)
        self._system_metrics = system_metrics
        self._client = MlflowClient(tracking_uri)
        self._run_id = run_id

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        now = now_ms()
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        try:
            self._client.log_batch(self._run_id, metrics=batch, synchronous=True)
        except Exception as exc:  # a tracking hiccup must not kill (and restart) a training worker
            log.warning("could not log metrics at step %d (%s); training goes on", step, type(exc).__name__)

    def close(self) -> None:
        if self._system_metrics:
            self._one_sample_at_least()
        mlflow.end_run()

    def _one_sample_at_least(self) -> None:
        """A run shorter than the sampling interval gets one sample of MLflow's own system metrics at its end."""
        try:
            if any(key.startswith("system/") for key in self._client.get_run(self._run_id).data.metrics):
                return
            import psutil

            memory = psutil.virtual_memory()
            sample = {
                "system/cpu_utilization_percentage": psutil.cpu_percent(interval=0.1),
                "system/system_memory_usage_megabytes": (memory.total - memory.available) / 1024**2,
                "system/system_memory_usage_percentage": memory.percent,
            }
            self._client.log_batch(self._run_id, metrics=[Metric(k, v, now_ms(), 0) for k, v in sample.items()])
        except Exception as exc:  # never fail a finished training for a monitoring sample
            log.warning("could not log a system metrics sample (%s)", type(exc).__name__)


def log_model(
    run_id: str,
    python_model: Any,
    artifacts: Mapping[str, str],
    signature: Any,
    registered_model: str,
    tags: Mapping[str, str],
    input_example: Any = None,
) -> tuple[str, str]:
    """Log a pyfunc model into the run and register it; returns (model version, models:/ URI).

    The model carries radpipe's own code (code_paths) and pins the packages it runs on, so a downstream
    user loads it without installing radpipe.
    """
    with tracking_errors("log and register the model"), mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            artifacts=dict(artifacts),
            signature=signature,
            input_example=input_example,
            code_paths=[str(Path(radpipe.__file__).parent)],
            pip_requirements=_requirements(),
            registered_model_name=registered_model,
            tags=dict(tags),
        )
        version = str(info.registered_model_version)
        client = MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(registered_model, version, key, value)
    client.set_terminated(run_id, "FINISHED")
    return version, f"models:/{registered_model}/{version}"


# What the served model imports (radpipe itself travels as code): pinned to the versions it was trained with.
_SERVING_PACKAGES = (
    "mlflow",
    "torch",
    "tokenizers",
    "numpy",
    "pandas",
    "pyarrow",
    "opencv-python-headless",
    "pydantic",
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-rle",
    "pyjpegls",
)


def _requirements() -> list[str]:
    pins = []
    for package in _SERVING_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        pins.append(f"{package}=={version.split('+')[0]}")  # a local tag (+cpu) is not on any index
    return pins


def fail_run(run_id: str) -> None:
    MlflowClient().set_terminated(run_id, "FAILED")


def run_metrics(run_id: str) -> dict[str, float]:
    with tracking_errors(f"read the run {run_id}"):
        return dict(MlflowClient().get_run(run_id).data.metrics)


def display_uri(uri: str) -> str:
    """A tracking URI fit for logs: user and password (postgresql://u:p@host, https://token@host) removed."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def experiment_of_run(run_id: str) -> str:
    """The experiment name a run belongs to (evaluations go beside the training run)."""
    client = MlflowClient()
    with tracking_errors("read the training run"):
        return str(client.get_experiment(client.get_run(run_id).info.experiment_id).name)


def log_results(
    run_id: str,
    metrics: Mapping[str, float],
    model_id: str | None = None,
    figures: Mapping[str, Any] | None = None,
    texts: Mapping[str, str] | None = None,
) -> None:
    """Metrics (also against the logged model, so they show on its page), figures and text files; ends the run."""
    finite = {k: float(v) for k, v in metrics.items() if v == v and abs(v) != float("inf")}
    client = MlflowClient()
    with tracking_errors("log the results"), mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(finite, model_id=model_id, synchronous=True)
        for path, figure in (figures or {}).items():
            mlflow.log_figure(figure, path)
        for path, text in (texts or {}).items():
            mlflow.log_text(text, path)
    client.set_terminated(run_id, "FINISHED")


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of one metric of a run, in step order; empty when none was logged."""
    with tracking_errors(f"read {key} of the run {run_id}"):
        history = MlflowClient().get_metric_history(run_id, key)
    return sorted((int(m.step), float(m.value)) for m in history)


OPS_EXPERIMENT = "radpipe-ops"


def log_ops_run(record: Mapping[str, Any]) -> str:
    """One ops row as an MLflow run in `radpipe-ops`: every flow run's counts and checks beside the models.

    Tags name the flow, its Prefect run and the outcome; numeric fields and the row's metrics become metrics.
    """
    import json

    tags = {
        "flow": str(record["flow"]),
        "prefect_flow_run_id": str(record["run_id"]),
        "status": str(record["status"]),
        **{k: str(record[k]) for k in ("dataset_version", "phi_gate", "validation", "champion") if record.get(k)},
    }
    run_id = start_run(OPS_EXPERIMENT, f"{record['flow']}-{str(record['run_id'])[:8]}", {}, tags)
    values = {
        k: float(record[k])
        for k in ("duration_s", "files_seen", "files_ingested", "files_quarantined")
        if record.get(k) is not None
    }
    values |= {k: float(v) for k, v in json.loads(record.get("metrics") or "{}").items()}
    client = MlflowClient()
    with tracking_errors("record the flow run"):
        client.log_batch(run_id, metrics=[Metric(k, v, now_ms(), 0) for k, v in values.items()], synchronous=True)
        client.set_terminated(run_id, "FINISHED" if record["status"] == "completed" else "FAILED")
    return run_id
