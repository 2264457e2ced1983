"""The whole chain as one flow, on a fresh archive: ingest to a registered champion and fine-tune."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.artifacts import Artifact

from flows.pipeline import pipeline_flow
from radpipe import tracking
from radpipe.cli.summaries import chain_report
from radpipe.synth import write_archive
from tests.train.tiny import tiny_config, write_config


@pytest.mark.integration
@pytest.mark.slow
def test_the_chain_ends_with_a_champion_and_a_registered_fine_tune(tmp_path: Path) -> None:
    write_archive(tmp_path / "archive", studies=48, seed=21)
    config = tiny_config(steps=8, checkpoint_every=8, log_every=4, val_every=8)
    config["registered_model"] = "pipeline-test-model"
    result = pipeline_flow(
        str(tmp_path / "archive" / "dicom"),
        str(tmp_path / "archive" / "reports"),
        str(tmp_path / "dataset"),
        str(write_config(tmp_path / "tiny.yaml", config)),
        finetune_labels=["pleural_effusion"],  # the one finding with both classes in this tiny test split
    )
    assert result["ingest"]["instances_added"] > 0
    assert result["promotion"]["promoted"]  # the first version of a new model name: no champion to beat
    assert result["champion"] == result["trained"]["model_uri"]

    client = MlflowClient(tracking.current_uri())
    champion = client.get_model_version_by_alias("pipeline-test-model", "champion")
    assert f"models:/pipeline-test-model/{champion.version}" == result["champion"]
    dataset_version = result["validation"]["dataset_version"]
    assert f"eval.{dataset_version}.zeroshot_auroc_macro" in champion.tags

    [tuned] = result["finetunes"]
    version = client.get_model_version("radpipe-pleural-effusion", tuned["model_version"])
    assert version.tags["parent_model"] == result["champion"]
    assert version.tags["dataset_version"] == dataset_version

    for key in ("evaluation", "promotion"):
        artifact = Artifact.get(key)
        assert artifact is not None and result["champion"] in str(artifact.data)
    summary = chain_report(result, tracking.current_uri())
    assert "zeroshot_auroc_macro" in summary and "@champion" in summary and "mlflow ui" in summary
