"""`radpipe evaluate` end to end on a real (untrained, registered) model: metrics, artifacts, version tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from radpipe import tracking
from radpipe.dataset.store import DatasetStore
from radpipe.evaluate.data import labelled_split
from radpipe.evaluate.protocol import ENCODER_HEADLINE, protocol_digest, version_tag
from radpipe.evaluate.run import evaluate
from radpipe.settings import get_settings
from tests.registry import register_untrained

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def evaluated(trainable: tuple[Path, Path]) -> tuple[Path, str, object]:
    dataset = trainable[1]
    uri = register_untrained(dataset, "eval-test-model", seed=1)
    return dataset, uri, evaluate(uri, str(dataset), get_settings(), resamples=200, seed=3)


def test_evaluation_logs_the_named_metrics_against_the_model_version(evaluated) -> None:
    dataset, uri, summary = evaluated
    for name in (
        "zeroshot_auroc_macro",
        "zeroshot_auroc_macro_ci_low",
        "retrieval_image_to_text_recall_at_5",
        "retrieval_text_to_image_recall_at_5",
        "retrieval_image_to_text_median_rank",
        "probe_auroc_macro",
    ):
        assert name in summary.metrics, name
    assert any(k.startswith("zeroshot_auroc_") and k.count("_") >= 3 for k in summary.metrics)
    m = summary.metrics
    assert m["zeroshot_auroc_macro_ci_low"] <= m["zeroshot_auroc_macro"] <= m["zeroshot_auroc_macro_ci_high"]
    assert not any(k.startswith(("generation_", "reasoning_")) for k in m)  # a contrastive model writes nothing

    client = MlflowClient(tracking.current_uri())
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["model_uri"] == uri and run.data.tags["dataset_version"] == summary.dataset_version
    assert run.data.metrics["zeroshot_auroc_macro"] == pytest.approx(m["zeroshot_auroc_macro"])
    shown = run.data.tags["examples"].split(",")  # what an erasure searches for: the grid's images
    assert shown and set(shown) <= set(labelled_split(DatasetStore(str(dataset)), "test").uids)
    assert run.data.tags["protocol"] == protocol_digest(3)
    artifacts = {a.path for a in client.list_artifacts(summary.run_id, "plots")}
    artifacts |= {a.path for a in client.list_artifacts(summary.run_id, "tables")}
    assert {"plots/zeroshot_roc.png", "plots/retrieval_examples.png", "tables/metrics.md"} <= artifacts

    name, version = uri.removeprefix("models:/").split("/")
    logged = client.get_logged_model(tracking.resolve_model(uri).model_id)  # shown on the model's own page
    assert "zeroshot_auroc_macro" in {metric.key for metric in logged.metrics or []}
    tags = client.get_model_version(name, version).tags
    for metric in ENCODER_HEADLINE:
        assert float(tags[version_tag(summary.dataset_version, metric)]) == pytest.approx(m[metric], abs=1e-6)


def test_evaluation_is_reproducible_for_a_seed(evaluated) -> None:
    dataset, uri, summary = evaluated
    again = evaluate(uri, str(dataset), get_settings(), resamples=200, seed=3)
    assert again.metrics == summary.metrics


def test_an_unknown_model_is_one_clear_error(trainable: tuple[Path, Path]) -> None:
    with pytest.raises(tracking.TrackingError, match="no-such-model"):
        evaluate("models:/no-such-model@champion", str(trainable[1]), get_settings())
