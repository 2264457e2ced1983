"""The ops row of every flow run: a Prefect state hook, attached to each flow as on_completion and on_failure.

    @flow(name="ingest", on_completion=[record_ops], on_failure=[record_ops])

The hook turns the flow's return value (or its exception) into a row of RADPIPE_HOME/ops/ (radpipe.ops)
and publishes the same row as a table artifact. Prefect logs, and does not fail the run on, an error in a
hook: a full disk under RADPIPE_HOME must not fail an ingest that succeeded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prefect.artifacts import create_table_artifact

from radpipe import tracking
from radpipe.ops import append_ops_row, ops_row
from radpipe.settings import get_settings


def record_ops(flow: Any, flow_run: Any, state: Any) -> None:
    """Append the run's ops row and publish it as the `ops-<flow>` table artifact."""
    try:
        outcome = state.result(raise_on_failure=False)
    except Exception as exc:  # a result that could not be read back still deserves its row
        outcome = exc
    failed = state.is_failed()
    error = (outcome if isinstance(outcome, BaseException) else RuntimeError("failed")) if failed else None
    row = ops_row(
        flow.name,
        str(flow_run.id),
        flow_run.start_time or state.timestamp,
        datetime.now(UTC),
        flow_run.parameters or {},
        result=None if failed else outcome,
        error=error,
    )
    settings = get_settings()
    append_ops_row(settings.home, row)
    record = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.record().items()}
    try:  # the same row in MLflow (experiment radpipe-ops), beside the models; the Parquet row is the record
        tracking.configure(settings)
        tracking.log_ops_run(record)
    except Exception as exc:
        logging.getLogger(__name__).warning("ops row not logged to MLflow (%s)", type(exc).__name__)
    create_table_artifact(
        key=f"ops-{flow.name}",
        table=[{k: v for k, v in record.items() if v is not None}],
        description=f"ops row of this {flow.name} run ({row.status}); all runs: `radpipe dashboard --out ops.html`",
    )
