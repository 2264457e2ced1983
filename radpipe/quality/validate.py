"""`radpipe validate`: every suite over every batch, dataset-wide checks, one summary; exit code."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from radpipe.dataset.store import DatasetStore
from radpipe.deid.gate import require_gate_passed
from radpipe.errors import SourceError
from radpipe.quality.batches import VALIDATED_TABLES, iter_batches
from radpipe.quality.dataset_checks import dataset_metrics
from radpipe.quality.gx import Failure, GxValidator
from radpipe.quality.status import QUALITY_DIR, SUMMARY_FILE, dataset_version
from radpipe.quality.suites import QualityConfig, dataset_suite, table_suites


@dataclass
class ValidationReport:
    passed: bool
    dataset_version: str
    batches: int
    failures: list[Failure] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    data_docs: str = ""
    validated_at: str = ""


def validate_dataset(
    uri: str, config: QualityConfig | None = None, on_batch: Callable[[str], None] | None = None
) -> ValidationReport:
    """Run the suites batch by batch (bounded memory) and the dataset-wide suite; write the summary."""
    store = DatasetStore(uri)
    if not store.table_files("instances"):
        raise SourceError(f"not an ingested radpipe dataset (no instances/): {uri}")
    if "://" in uri and not uri.startswith("file://"):
        raise SourceError("validation writes Data Docs next to the data: use a local dataset path for now")
    require_gate_passed(store)  # never validate (and so never release) data that may hold PHI
    config = config or QualityConfig()
    root = Path(store.path(QUALITY_DIR))
    suites = {**table_suites(config), "dataset": dataset_suite(config)}
    validator = GxValidator(root, suites)
    failures: list[Failure] = []
    batches = 0
    for batch in iter_batches(store, VALIDATED_TABLES):
        failures += validator.validate(batch.table, batch.name, batch.frame)
        batches += 1
        if on_batch:
            on_batch(f"{batch.table}/{batch.name}")
    metrics = dataset_metrics(store)
    failures += validator.validate("dataset", "whole dataset", pd.DataFrame([metrics]))
    report = ValidationReport(
        passed=not failures,
        dataset_version=dataset_version(store),
        batches=batches,
        failures=failures,
        metrics=metrics,
        data_docs=str(validator.build_docs()),
        validated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    (root / SUMMARY_FILE).write_text(json.dumps(asdict(report), indent=2))
    return report
