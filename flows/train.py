"""Pretraining flow (thin over radpipe.commands): refuses a dataset version that has not passed validation."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.commands import train_model
from radpipe.dataset.store import DatasetStore
from radpipe.quality.status import require_validated


@task(cache_policy=NO_CACHE)
def check_validated_task(dataset: str) -> str:
    """Fail fast, before Ray starts, with what to run first."""
    return require_validated(DatasetStore(dataset))


@task(cache_policy=NO_CACHE)
def train_task(dataset: str, config: str | None) -> dict[str, Any]:
    summary = train_model(dataset, config, on_status=get_run_logger().info)
    create_markdown_artifact(key="pretraining", markdown=summary.markdown())
    return summary.record()


@flow(name="train", on_completion=[record_ops], on_failure=[record_ops])
def train_flow(dataset: str, config: str | None = None) -> dict[str, Any]:
    """Self-supervised image-report pretraining of a validated dataset version; registers the model."""
    check_validated_task(dataset)
    return train_task(dataset, config)
