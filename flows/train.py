"""Pretraining flow (thin over radpipe.context): refuses a dataset version that has not passed validation."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.context import train_model
from radpipe.dataset.store import DatasetStore
from radpipe.errors import RadpipeError
from radpipe.quality.status import require_validated


@task(cache_policy=NO_CACHE)
def check_validated_task(dataset: str) -> str:
    """Fail fast, before Ray starts, with what to run first."""
    return require_validated(DatasetStore(dataset))


@task(cache_policy=NO_CACHE)
def train_task(dataset: str, config: str | None) -> dict[str, Any]:
    logger = get_run_logger()
    summary = train_model(dataset, config, on_status=logger.info)
    metrics = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(summary.metrics.items()) if not k.startswith("system/"))
    create_markdown_artifact(
        key="pretraining",
        markdown=(
            f"# Pretraining on dataset {summary.dataset_version}\n\n"
            f"Model `{summary.model_uri}`, MLflow run `{summary.run_id}`, profile `{summary.profile}`, "
            f"{summary.steps} steps (resumed from {summary.resumed_from_step}).\n\n"
            "| metric | last value |\n|---|---|\n" + metrics
        ),
    )
    return asdict(summary)


@flow(name="train", on_completion=[record_ops], on_failure=[record_ops])
def train_flow(dataset: str, config: str | None = None) -> dict[str, Any]:
    """Self-supervised image-report pretraining of a validated dataset version; registers the model."""
    check_validated_task(dataset)
    return train_task(dataset, config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the radpipe pretraining flow")
    parser.add_argument("dataset")
    parser.add_argument("--config", help="experiment YAML under configs/")
    args = parser.parse_args(argv)
    try:
        result = train_flow(args.dataset, args.config)
    except RadpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"registered {result['model_uri']} from dataset version {result['dataset_version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
