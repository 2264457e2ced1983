"""Curate and validate flows (thin over radpipe.context): a failed suite fails the flow."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.context import curate_dataset, validate
from radpipe.errors import RadpipeError
from radpipe.quality.status import ValidationFailed

__all__ = ["ValidationFailed", "curate_validate_flow"]


@task(cache_policy=NO_CACHE)
def curate_task(dataset: str) -> dict[str, Any]:
    return asdict(curate_dataset(dataset))


@task(cache_policy=NO_CACHE)
def validate_task(dataset: str) -> dict[str, Any]:
    report = validate(dataset)
    failed = "\n".join(
        f"| {f.suite} | {f.expectation} | {f.column} | {f.batch} | {f.unexpected} |" for f in report.failures[:50]
    )
    create_markdown_artifact(
        key="validation",
        markdown=(
            f"# Validation of {report.dataset_version}: {'passed' if report.passed else 'FAILED'}\n\n"
            f"{report.batches} batches; Data Docs: `{report.data_docs}`\n\n"
            "| suite | expectation | column | batch | rows |\n|---|---|---|---|---|\n" + failed
        ),
    )
    report.require_passed()
    return {"dataset_version": report.dataset_version, "batches": report.batches, "data_docs": report.data_docs}


@flow(name="curate-validate", on_completion=[record_ops], on_failure=[record_ops])
def curate_validate_flow(dataset: str) -> dict[str, Any]:
    """Curate (splits, duplicates) then validate; fails, stopping what comes after, if a suite fails."""
    curation = curate_task(dataset)
    validation = validate_task(dataset)
    return {"curation": curation, "validation": validation}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the radpipe curate + validate flow")
    parser.add_argument("dataset")
    args = parser.parse_args(argv)
    try:
        result = curate_validate_flow(args.dataset)
    except RadpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"curate + validate: dataset version {result['validation']['dataset_version']} passed; "
        f"Data Docs: {result['validation']['data_docs']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
