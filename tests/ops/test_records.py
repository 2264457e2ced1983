"""Every summary renders its own Markdown artifact and its JSON record (tested without Prefect)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from radpipe.evaluate.promotion import PromotionSummary
from radpipe.evaluate.run import EvaluationSummary
from radpipe.finetune.run import FinetuneSummary
from radpipe.ingest.summary import IngestSummary
from radpipe.model.embed_dataset import EmbeddingSummary
from radpipe.quality.gx import Failure
from radpipe.quality.status import ValidationFailed
from radpipe.quality.validate import ValidationReport
from radpipe.train.run import TrainSummary

EVALUATION = EvaluationSummary(
    "models:/radpipe-foundation/3",
    "v1",
    "run-e",
    {
        "zeroshot_auroc_macro": 0.81,
        "zeroshot_auroc_pneumothorax": 0.9,
        "zeroshot_auroc_pneumothorax_ci_low": 0.8,
        "zeroshot_auroc_pneumothorax_ci_high": 0.95,
        "val_loss": 2.0,
    },
    {"test": 40},
)
SUMMARIES = [
    IngestSummary(files_seen=5, files_in=5, instances_added=4, quarantined=Counter({"not_dicom": 1}), seconds=2.0),
    ValidationReport(passed=True, dataset_version="v1", batches=7, data_docs="/d/_quality/docs/index.html"),
    TrainSummary("run-t", "models:/radpipe-foundation/3", "3", "v1", "cxr-224", 12, 0, {}, {"train_loss": 1.25}),
    EVALUATION,
    PromotionSummary(
        "models:/radpipe-foundation/3", True, "beats the champion", "zeroshot_auroc_macro", "v1", 0.81, None, None
    ),
    FinetuneSummary(
        "run-f",
        "radpipe-pneumothorax",
        "1",
        "models:/radpipe-pneumothorax/1",
        "models:/radpipe-foundation/3",
        "radpipe-foundation",
        "3",
        "v1",
        "pneumothorax",
        "frozen",
        None,
        {"finetune_auroc": 0.88},
    ),
    EmbeddingSummary("models:/radpipe-foundation/3", 40, 32, "/d/embeddings"),
]


@pytest.mark.parametrize("summary", SUMMARIES, ids=lambda s: type(s).__name__)
def test_a_record_is_plain_json_with_its_facts(summary: Any) -> None:
    record = summary.record()
    assert json.loads(json.dumps(record)) == record
    assert record["facts"] == summary.facts().record()


def test_each_markdown_names_what_an_operator_looks_for() -> None:
    ingest, validation, trained, evaluation, promotion, finetune, _ = SUMMARIES
    assert "4 instances, 1 quarantined" in ingest.markdown() and "| not_dicom | 1 |" in ingest.markdown()
    assert "Validation of v1: passed" in validation.markdown()
    assert "| train_loss | 1.25 |" in trained.markdown()
    text = evaluation.markdown()
    assert (
        "| zeroshot_auroc_macro | 0.810 |" in text
        and "| zeroshot_auroc_pneumothorax | 0.900 | [0.800, 0.950] |" in text
    )
    assert "promoted to @champion" in promotion.markdown()
    assert "Fine-tune for pneumothorax" in finetune.markdown() and "shots all" in finetune.markdown()


def test_the_evaluation_row_keeps_the_headline_metrics_only() -> None:
    assert EVALUATION.facts().metrics == {"zeroshot_auroc_macro": 0.81}


def test_a_failed_validation_names_its_first_failed_expectation() -> None:
    failure = Failure("images", "part-0#0", "expect_column_values_to_be_between", "rows", 3, "")
    report = ValidationReport(passed=False, dataset_version="v2", batches=1, failures=[failure], data_docs="docs")
    assert (
        report.facts().validation == "failed" and "| images | expect_column_values_to_be_between |" in report.markdown()
    )
    with pytest.raises(
        ValidationFailed, match=r"1 expectation\(s\) failed, first images: expect_column_values_to_be_between\(rows\)"
    ):
        report.require_passed()
