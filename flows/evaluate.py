"""Evaluate and gated-promote flow (thin over radpipe.commands): numbers on the test split, then @champion."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.commands import evaluate_model, promote_model
from radpipe.ops.facts import joined


@task(cache_policy=NO_CACHE)
def evaluate_task(model_uri: str, dataset: str, seed: int = 0) -> dict[str, Any]:
    summary = evaluate_model(model_uri, dataset, seed=seed, on_status=get_run_logger().info)
    create_markdown_artifact(key="evaluation", markdown=summary.markdown())
    return summary.record()


@task(cache_policy=NO_CACHE)
def promote_task(model_uri: str, dataset: str, metric: str | None = None) -> dict[str, Any]:
    summary = promote_model(model_uri, dataset, metric=metric, on_status=get_run_logger().info)
    create_markdown_artifact(key="promotion", markdown=summary.markdown())
    return summary.record()


@flow(name="evaluate-promote", on_completion=[record_ops], on_failure=[record_ops])
def evaluate_promote_flow(
    model_uri: str, dataset: str, metric: str | None = None, promote: bool = True, seed: int = 0
) -> dict[str, Any]:
    """Evaluate a model version on the dataset's test split; promote it to @champion if it beats the champion."""
    evaluation = evaluate_task(model_uri, dataset, seed)
    promotion = promote_task(evaluation["model_uri"], dataset, metric) if promote else None
    facts = joined([evaluation, promotion])
    return {"evaluation": evaluation, "promotion": promotion, "facts": facts.record()}
