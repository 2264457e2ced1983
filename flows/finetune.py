"""Fine-tuning flow (thin over radpipe.context): a registered radpipe-<finding> classifier from a foundation model."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.context import finetune_model
from radpipe.dataset.store import DatasetStore
from radpipe.errors import RadpipeError
from radpipe.quality.status import require_validated


@task(cache_policy=NO_CACHE)
def check_validated_task(dataset: str) -> str:
    """Fail fast, before the model loads, with what to run first."""
    return require_validated(DatasetStore(dataset))


@task(cache_policy=NO_CACHE)
def finetune_task(model_uri: str, dataset: str, label: str, shots: int | None, mode: str) -> dict[str, Any]:
    logger = get_run_logger()
    summary = finetune_model(model_uri, dataset, label, shots=shots, mode=mode, on_status=logger.info)
    metrics = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(summary.metrics.items()))
    create_markdown_artifact(
        key=f"finetune-{summary.label.replace('_', '-')}",
        markdown=(
            f"# Fine-tune for {summary.label} on dataset {summary.dataset_version}\n\n"
            f"Model `{summary.model_uri}` from `{summary.parent_uri}`, MLflow run `{summary.run_id}`, "
            f"mode {summary.mode}, shots {summary.shots if summary.shots is not None else 'all'}.\n\n"
            "| metric | value |\n|---|---|\n" + metrics
        ),
    )
    return asdict(summary)


@flow(name="finetune", on_completion=[record_ops], on_failure=[record_ops])
def finetune_flow(
    model_uri: str, dataset: str, label: str, shots: int | None = None, mode: str = "frozen"
) -> dict[str, Any]:
    """A classification head for one finding on a foundation model, measured on the test split and registered."""
    check_validated_task(dataset)
    return finetune_task(model_uri, dataset, label, shots, mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the radpipe fine-tuning flow")
    parser.add_argument("model_uri", help="e.g. models:/radpipe-foundation@champion")
    parser.add_argument("dataset")
    parser.add_argument("--label", required=True)
    parser.add_argument("--shots", type=int)
    parser.add_argument("--mode", choices=["frozen", "partial"], default="frozen")
    args = parser.parse_args(argv)
    try:
        result = finetune_flow(args.model_uri, args.dataset, args.label, args.shots, args.mode)
    except RadpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"registered {result['model_uri']} (finetune_auroc {result['metrics']['finetune_auroc']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
