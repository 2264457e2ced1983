"""Evaluate and gated-promote flow (thin over radpipe.context): numbers on the test split, then @champion."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.context import evaluate_model, promote_model
from radpipe.errors import RadpipeError
from radpipe.evaluate.protocol import HEADLINE


@task(cache_policy=NO_CACHE)
def evaluate_task(model_uri: str, dataset: str, seed: int = 0) -> dict[str, Any]:
    summary = evaluate_model(model_uri, dataset, seed=seed, on_status=get_run_logger().info)
    m = summary.metrics
    findings = sorted(
        k for k in m if k.startswith("zeroshot_auroc_") and not k.endswith(("_ci_low", "_ci_high", "_macro"))
    )
    rows = "\n".join(f"| {k} | {m[k]:.3f} | [{m[k + '_ci_low']:.3f}, {m[k + '_ci_high']:.3f}] |" for k in findings)
    headline = "\n".join(f"| {k} | {m[k]:.3f} |" for k in HEADLINE if k in m)
    create_markdown_artifact(
        key="evaluation",
        markdown=(
            f"# Evaluation of `{summary.model_uri}` on dataset {summary.dataset_version}\n\n"
            f"MLflow run `{summary.run_id}`; {summary.images.get('test', 0)} test images.\n\n"
            f"| metric | value |\n|---|---|\n{headline}\n\n"
            f"| zero-shot AUROC | value | 95% CI |\n|---|---|---|\n{rows}\n"
        ),
    )
    return asdict(summary)


@task(cache_policy=NO_CACHE)
def promote_task(model_uri: str, dataset: str, metric: str | None = None) -> dict[str, Any]:
    summary = promote_model(model_uri, dataset, metric=metric, on_status=get_run_logger().info)
    create_markdown_artifact(
        key="promotion",
        markdown=(
            f"# Promotion: `{summary.model_uri}` {'promoted to @champion' if summary.promoted else 'not promoted'}\n\n"
            f"{summary.metric} on dataset {summary.dataset_version}: candidate {summary.candidate_value:.4f}, "
            f"champion {summary.champion_uri or 'none'} "
            f"{'' if summary.champion_value is None else f'{summary.champion_value:.4f}'}.\n\n"
            f"Reason: {summary.reason}. Champion now: `{summary.champion_now}`.\n"
        ),
    )
    return {**asdict(summary), "champion_now": summary.champion_now}


@flow(name="evaluate-promote", on_completion=[record_ops], on_failure=[record_ops])
def evaluate_promote_flow(
    model_uri: str, dataset: str, metric: str | None = None, promote: bool = True, seed: int = 0
) -> dict[str, Any]:
    """Evaluate a model version on the dataset's test split; promote it to @champion if it beats the champion."""
    evaluation = evaluate_task(model_uri, dataset, seed)
    promotion = promote_task(evaluation["model_uri"], dataset, metric) if promote else None
    return {"evaluation": evaluation, "promotion": promotion}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the radpipe evaluate + promote flow")
    parser.add_argument("model_uri")
    parser.add_argument("dataset")
    parser.add_argument("--metric", help="compared for promotion (default zeroshot_auroc_macro)")
    parser.add_argument("--no-promote", action="store_true", help="evaluate only")
    args = parser.parse_args(argv)
    try:
        result = evaluate_promote_flow(args.model_uri, args.dataset, args.metric, not args.no_promote)
    except RadpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics = result["evaluation"]["metrics"]
    print(", ".join(f"{k} {metrics[k]:.3f}" for k in HEADLINE if k in metrics))
    if result["promotion"]:
        print(f"champion: {result['promotion']['champion_now']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
