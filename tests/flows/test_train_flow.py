"""The train flow: refuses an unvalidated dataset version; trains, registers and publishes an artifact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prefect.artifacts import Artifact

from flows.train import train_flow
from radpipe.quality.status import NotValidated
from tests.train.tiny import tiny_config, write_config


def test_flow_refuses_a_dataset_that_has_not_passed_validation(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset, ignore=shutil.ignore_patterns("_quality"))
    with pytest.raises(NotValidated, match="has not been validated: run `radpipe validate DATASET` first"):
        train_flow(str(dataset))


@pytest.mark.integration
@pytest.mark.slow
def test_flow_trains_registers_and_publishes(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", tiny_config(steps=4, checkpoint_every=4, log_every=2, val_every=4))
    result = train_flow(str(trainable[1]), str(config))
    assert result["model_uri"].startswith("models:/radpipe-foundation/")
    assert result["steps"] == 4
    artifact = Artifact.get("pretraining")
    assert artifact is not None and result["model_uri"] in str(artifact.data)
