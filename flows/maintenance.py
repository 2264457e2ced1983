"""The weekly upkeep of a dataset (infra/prefect.yaml: weekly-optimize): compact small files, vacuum versions
past retention (thin over radpipe.commands.optimize)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.ops import record_ops
from radpipe.commands import optimize
from radpipe.ops.facts import RunFacts


@flow(name="optimize", log_prints=True, on_completion=[record_ops], on_failure=[record_ops])
def optimize_flow(dataset: str, retention_days: float | None = None) -> dict[str, Any]:
    """Compact `dataset`'s small files and vacuum its table versions older than the retention period."""
    summary = optimize(dataset, retention_days)
    get_run_logger().info(
        "compacted %d files away; vacuumed %d old files", summary.compacted, sum(summary.vacuumed.values())
    )
    return {
        "files_before": summary.files_before,
        "files_after": summary.files_after,
        "vacuumed": summary.vacuumed,
        "facts": RunFacts().record(),
    }
