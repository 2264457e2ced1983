"""The finetune flow: refuses an unvalidated dataset version; fine-tunes, registers and publishes an artifact."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from prefect.artifacts import Artifact

from flows.finetune import finetune_flow
from radpipe.quality.status import NotValidated
from tests.registry import register_untrained


@pytest.fixture(scope="module")
def parent(trainable: tuple[Path, Path]) -> str:
    return register_untrained(trainable[1], f"ft-flow-{uuid.uuid4().hex[:8]}", seed=7)


def test_flow_refuses_a_dataset_that_has_not_passed_validation(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset, ignore=shutil.ignore_patterns("_quality"))
    # Refused before the model is looked up: this one does not exist.
    with pytest.raises(NotValidated, match="has not been validated: run `radpipe validate DATASET` first"):
        finetune_flow("models:/never-registered/1", str(dataset), "pneumothorax")


@pytest.mark.integration
def test_flow_fine_tunes_registers_and_publishes(parent: str, trainable: tuple[Path, Path]) -> None:
    result = finetune_flow(parent, str(trainable[1]), "pneumothorax", shots=3)
    assert result["model_uri"].startswith("models:/radpipe-pneumothorax/")
    assert result["parent_uri"] == parent and result["shots"] == 3
    assert result["metrics"]["finetune_train_positives"] == 3
    artifact = Artifact.get("finetune-pneumothorax")
    assert artifact is not None and result["model_uri"] in str(artifact.data) and parent in str(artifact.data)
