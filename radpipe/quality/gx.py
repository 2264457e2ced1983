"""The Great Expectations adapter: the only module that imports GX (1.x fluent API).

A file context lives under DATASET/_quality/gx and is rebuilt on every validation run, so its suites are
always exactly radpipe's suites (radpipe/quality/suites.py). One pandas data source, one dataframe
asset, suite, validation definition and checkpoint per table; batches arrive as pandas DataFrames.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from radpipe.quality.suites import Check


@dataclass(frozen=True)
class Failure:
    """A failed expectation: which, on what column, in which batch, how many rows."""

    suite: str
    batch: str
    expectation: str
    column: str
    unexpected: int | None
    why: str


class GxValidator:
    """Validates DataFrames against radpipe's suites and renders Data Docs."""

    def __init__(self, root: Path, suites: dict[str, list[Check]]) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network calls from validation
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        shutil.rmtree(root / "gx", ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        self.context = gx.get_context(mode="file", project_root_dir=str(root))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.variables.save()
        source = self.context.data_sources.add_pandas("radpipe")
        self.checkpoints: dict[str, Any] = {}
        self.why: dict[str, dict[str, str]] = {}
        for name, checks in suites.items():
            batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("batch")
            suite = gx.ExpectationSuite(name=name)
            for check in checks:
                expectation = getattr(gx.expectations, check.expectation)(**check.kwargs)
                suite.add_expectation(expectation)
            suite = self.context.suites.add(suite)
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(data=batch_definition, suite=suite, name=name)
            )
            self.checkpoints[name] = self.context.checkpoints.add(
                gx.Checkpoint(name=name, validation_definitions=[validation], result_format="SUMMARY")
            )
            self.why[name] = {self._key(c.expectation, c.kwargs): c.why for c in checks}

    @staticmethod
    def _key(expectation: str, kwargs: dict[str, Any]) -> str:
        snake = "".join("_" + c.lower() if c.isupper() else c for c in expectation).lstrip("_")
        return f"{snake}:{kwargs.get('column') or kwargs.get('column_A') or ''}"

    def validate(self, suite: str, batch: str, frame: pd.DataFrame) -> list[Failure]:
        result = self.checkpoints[suite].run(batch_parameters={"dataframe": frame})
        failures = []
        for run in result.run_results.values():
            for item in run.results:
                if item.success:
                    continue
                config = item.expectation_config
                column = str(config.kwargs.get("column") or config.kwargs.get("column_A") or "")
                unexpected = (item.result or {}).get("unexpected_count")
                failures.append(
                    Failure(
                        suite,
                        batch,
                        config.type,
                        column,
                        unexpected,
                        self.why[suite].get(f"{config.type}:{column}", ""),
                    )
                )
        return failures

    def build_docs(self) -> Path:
        self.context.build_data_docs()
        sites = self.context.get_docs_sites_urls()
        url = str(sites[0]["site_url"]) if sites else ""
        return Path(url.removeprefix("file://"))
