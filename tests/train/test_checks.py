"""Refusals before Ray starts: configs that do not fit the data or the cluster settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, SourceError
from radpipe.model.config import ExperimentConfig
from radpipe.settings import Settings
from radpipe.train.data import training_view
from radpipe.train.run import check_cluster_settings, check_trainable
from tests.train.tiny import tiny_config


def _experiment(**image: object) -> ExperimentConfig:
    config = tiny_config()
    config["model"]["image"].update(image)
    return ExperimentConfig.model_validate(config)


def test_upsampling_past_the_profile_is_refused(trainable: tuple[Path, Path]) -> None:
    view = training_view(DatasetStore(str(trainable[1])))
    with pytest.raises(ConfigError, match="above the dataset's profile cxr-224"):
        check_trainable(view, _experiment(input_size=512))


def test_3d_encoder_on_a_2d_dataset_is_refused(trainable: tuple[Path, Path]) -> None:
    view = training_view(DatasetStore(str(trainable[1])))
    with pytest.raises(ConfigError, match="spatial_dims 3"):
        check_trainable(view, _experiment(spatial_dims=3, input_size=32))


def test_too_little_data_for_one_global_batch(trainable: tuple[Path, Path]) -> None:
    view = training_view(DatasetStore(str(trainable[1])))
    config = tiny_config(batch_size=4096)
    with pytest.raises(SourceError, match="lower train.batch_size"):
        check_trainable(view, ExperimentConfig.model_validate(config))


def test_a_cluster_needs_shared_tracking_and_checkpoint_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    # mlflow.set_tracking_uri (run by earlier tests) exports MLFLOW_TRACKING_URI; these settings come from here.
    for variable in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "RADPIPE_RAY_STORAGE"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI"):
        check_cluster_settings(Settings(RAY_ADDRESS="ray://head:10001"))
    with pytest.raises(ConfigError, match="RADPIPE_RAY_STORAGE"):
        check_cluster_settings(Settings(RAY_ADDRESS="ray://head:10001", MLFLOW_TRACKING_URI="http://mlflow:5000"))
    check_cluster_settings(
        Settings(RAY_ADDRESS="auto", MLFLOW_TRACKING_URI="http://mlflow:5000", RADPIPE_RAY_STORAGE="s3://b/ray")
    )
    check_cluster_settings(Settings())  # local Ray: the embedded defaults serve
    # Embedding actors write no checkpoints: the registry is all they need to reach.
    check_cluster_settings(Settings(RAY_ADDRESS="auto", MLFLOW_TRACKING_URI="http://mlflow:5000"), checkpoints=False)
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI"):
        check_cluster_settings(Settings(RAY_ADDRESS="auto"), checkpoints=False)
