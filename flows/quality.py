"""Curate and validate flows (thin over radpipe.commands): a failed suite fails the flow."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.commands import curate_dataset, validate
from radpipe.ops.facts import json_clean
from radpipe.quality.status import ValidationFailed

__all__ = ["ValidationFailed", "curate_validate_flow"]


@task(cache_policy=NO_CACHE)
def curate_task(dataset: str) -> dict[str, Any]:
    return dict(json_clean(curate_dataset(dataset)))  # not dataclasses.asdict: see json_clean


@task(cache_policy=NO_CACHE)
def validate_task(dataset: str) -> dict[str, Any]:
    report = validate(dataset)
    create_markdown_artifact(key="validation", markdown=report.markdown())
    report.require_passed()
    return report.record()


@flow(name="curate-validate", on_completion=[record_ops], on_failure=[record_ops])
def curate_validate_flow(dataset: str) -> dict[str, Any]:
    """Curate (splits, duplicates) then validate; fails, stopping what comes after, if a suite fails."""
    curation = curate_task(dataset)
    validation = validate_task(dataset)
    return {"curation": curation, "validation": validation, "facts": validation["facts"]}
