"""`radpipe validate`: every suite over every batch, dataset-wide checks, one summary; exit code."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from radpipe.dataset.store import DatasetStore
from radpipe.deid.gate import require_gate_passed
from radpipe.errors import SourceError
from radpipe.ops.facts import FACTS, FAILED, PASSED, RunFacts, json_clean
from radpipe.quality.batches import VALIDATED_TABLES, iter_batches
from radpipe.quality.dataset_checks import dataset_metrics
from radpipe.quality.gx import Failure, GxValidator
from radpipe.quality.status import QUALITY_DIR, SUMMARY_FILE, ValidationFailed, dataset_version, record_validation
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

    def facts(self) -> RunFacts:
        return RunFacts(dataset_version=self.dataset_version, validation=PASSED if self.passed else FAILED)

    def record(self) -> dict[str, Any]:
        """JSON-clean: the version, batches, where the Data Docs are, and the facts (failures stay in the docs)."""
        return json_clean(
            {
                "dataset_version": self.dataset_version,
                "batches": self.batches,
                "data_docs": self.data_docs,
                "passed": self.passed,
                FACTS: self.facts().record(),
            }
        )

    def markdown(self) -> str:
        """The result as a Markdown artifact: verdict, Data Docs, then the first 50 failed expectations."""
        failed = "\n".join(
            f"| {f.suite} | {f.expectation} | {f.column} | {f.batch} | {f.unexpected} |" for f in self.failures[:50]
        )
        return (
            f"# Validation of {self.dataset_version}: {'passed' if self.passed else 'FAILED'}\n\n"
            f"{self.batches} batches; Data Docs: `{self.data_docs}`\n\n"
            "| suite | expectation | column | batch | rows |\n|---|---|---|---|---|\n" + failed
        )

    def require_passed(self) -> None:
        """ValidationFailed, naming the first failed expectation, unless every suite passed."""
        if not self.passed:
            first = self.failures[0]
            raise ValidationFailed(
                f"{len(self.failures)} expectation(s) failed, first {first.suite}: "
                f"{first.expectation}({first.column}); see {self.data_docs}"
            )


def validate_dataset(
    uri: str, config: QualityConfig | None = None, on_batch: Callable[[str], None] | None = None
) -> ValidationReport:
    """Run the suites batch by batch (bounded memory) and the dataset-wide suite; write the summary."""
    store = DatasetStore(uri)
    if not store.table_files("instances"):
        raise SourceError(f"not an ingested radpipe dataset (no instances/): {uri}")
    require_gate_passed(store)  # never validate (and so never release) data that may hold PHI
    config = config or QualityConfig()
    if isinstance(store.fs, LocalFileSystem):
        report = _validate(store, config, Path(store.path(QUALITY_DIR)), on_batch)
        record_validation(store, asdict(report))
        return report
    # Great Expectations writes its project and Data Docs to a local folder: build them in a scratch folder,
    # then copy them next to the data, summary last (what later steps read to see that the version passed).
    with tempfile.TemporaryDirectory(prefix="radpipe-quality-") as scratch:
        report = _validate(store, config, Path(scratch), on_batch)
        docs = Path(report.data_docs)
        (Path(scratch) / SUMMARY_FILE).unlink()  # written below with the docs' new address
        store.fs.put(scratch + "/", store.path(QUALITY_DIR), recursive=True)
        if docs.is_relative_to(scratch):
            report.data_docs = store.fs.unstrip_protocol(store.path(QUALITY_DIR, str(docs.relative_to(scratch))))
        with store.fs.open(store.path(QUALITY_DIR, SUMMARY_FILE), "w") as fh:
            fh.write(json.dumps(asdict(report), indent=2))
    record_validation(store, asdict(report))
    return report


def _validate(
    store: DatasetStore, config: QualityConfig, root: Path, on_batch: Callable[[str], None] | None
) -> ValidationReport:
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
