"""The ingest flow: DICOM + reports into the Parquet dataset (thin over radpipe.commands.ingest_sources)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.ops import record_ops
from radpipe.commands import ingest_sources, phi_gate
from radpipe.errors import RadpipeError
from radpipe.ingest.summary import IngestSummary
from radpipe.preprocess.profile import DEFAULT_PROFILE

# Errors that say the path or its permissions are wrong: retrying cannot help.
PERMANENT_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O failures (ingest is idempotent); never bad data, bad settings or bad paths."""
    try:
        state.result()
    except (RadpipeError, *PERMANENT_OS_ERRORS):
        return False
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


@task(retries=2, retry_delay_seconds=15, retry_condition_fn=retry_on_io_error, cache_policy=NO_CACHE)
def ingest_task(dicom: str | None, reports: str | None, dataset: str, profile: str) -> dict[str, Any]:
    logger = get_run_logger()
    step = {"next": 0}

    def on_progress(done: int, total: int) -> None:
        if total and done * 10 >= step["next"] * total:
            logger.info("ingest progress: %d/%d files", done, total)
            step["next"] = done * 10 // total + 1

    summary = ingest_sources(dicom, reports, dataset, profile, on_progress, gate=False)
    create_markdown_artifact(key="ingest-summary", markdown=summary.markdown())
    return summary.record()


@task(cache_policy=NO_CACHE)
def phi_gate_task(dataset: str, run_records: int) -> dict[str, int]:
    """Withholds each record holding a source identifier; fails the flow when more than RADPIPE_PHI_MAX_WITHHELD of
    the run's records are withheld (names tables, columns and kinds, never the value). Withheld records by reason."""
    return dict(phi_gate(dataset, run_records).by_reason)


@flow(name="ingest", log_prints=True, on_completion=[record_ops], on_failure=[record_ops])
def ingest_flow(dicom: str | None, reports: str | None, dataset: str, profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """Ingest new DICOM and report files into `dataset`; a rerun over the same sources adds nothing."""
    summary = IngestSummary.from_record(ingest_task(dicom, reports, dataset, profile))
    # Too many withheld records raise here: the flow fails before anything downstream reads the data.
    summary.withheld = Counter(phi_gate_task(dataset, summary.instances_added + summary.reports_added))
    return summary.record()
