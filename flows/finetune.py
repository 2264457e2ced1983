"""Fine-tuning flow (thin over radpipe.commands): a registered radpipe-<finding> classifier from a foundation model."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.commands import finetune_model
from radpipe.dataset.store import DatasetStore
from radpipe.quality.status import require_validated


@task(cache_policy=NO_CACHE)
def check_validated_task(dataset: str) -> str:
    """Fail fast, before the model loads, with what to run first."""
    return require_validated(DatasetStore(dataset))


@task(cache_policy=NO_CACHE)
def finetune_task(model_uri: str, dataset: str, label: str, shots: int | None, mode: str) -> dict[str, Any]:
    summary = finetune_model(model_uri, dataset, label, shots=shots, mode=mode, on_status=get_run_logger().info)
    create_markdown_artifact(key=f"finetune-{summary.label.replace('_', '-')}", markdown=summary.markdown())
    return summary.record()


@flow(name="finetune", on_completion=[record_ops], on_failure=[record_ops])
def finetune_flow(
    model_uri: str, dataset: str, label: str, shots: int | None = None, mode: str = "frozen"
) -> dict[str, Any]:
    """A classification head for one finding on a foundation model, measured on the test split and registered."""
    check_validated_task(dataset)
    return finetune_task(model_uri, dataset, label, shots, mode)
