"""3D pretraining for real: CT/MR volumes through Ray Train into MLflow, and a series embedded by the pyfunc."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pydicom
import pytest
from mlflow import MlflowClient

from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.errors import ConfigError
from radpipe.model.config import ExperimentConfig
from radpipe.settings import get_settings
from radpipe.train.data import volume_view
from radpipe.train.run import TrainSummary, check_trainable, train
from tests.train.tiny import quick_experiment, validated_archive

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = Path(__file__).parents[2] / "configs" / "smoke-3d.yaml"


def _experiment() -> ExperimentConfig:
    return quick_experiment(CONFIG, 6, "radpipe-tests-3d", log_every=3)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return validated_archive(tmp_path_factory.mktemp("volumes"), 2, 40, 11)


@pytest.fixture(scope="module")
def trained(volumes: tuple[Path, Path], local_ray: None) -> TrainSummary:
    return train(str(volumes[1]), _experiment(), get_settings())


def test_a_3d_run_trains_on_volumes_and_registers(trained: TrainSummary) -> None:
    client = MlflowClient(get_settings().tracking_uri)
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED" and trained.steps == 6
    assert run.data.params["model.image.spatial_dims"] == "3"
    assert trained.profile == "ct-small,mr-small"  # CT and MR, each with its own profile, one network
    assert "train_loss" in run.data.metrics
    assert trained.model_uri.startswith("models:/radpipe-tests-3d/")


def test_a_series_of_files_embeds_like_its_ingested_volume(
    trained: TrainSummary, volumes: tuple[Path, Path], deid: Deidentifier
) -> None:
    archive, dataset = volumes
    manifest = json.loads((archive / "volumes_manifest.json").read_text())
    source_uid = manifest["cases"]["shuffled"]  # files named and numbered out of slice order
    files = [p.read_bytes() for p in sorted((archive / "dicom").rglob("*.dcm"))]
    series = [
        raw
        for raw, ds in ((r, pydicom.dcmread(io.BytesIO(r), stop_before_pixels=True)) for r in files)
        if ds.SeriesInstanceUID == source_uid
    ]
    stored_uid = deid.pseudonymizer.pseudonym("uid", source_uid)
    [row] = [
        r
        for r in DatasetStore(str(dataset)).read_table("volumes").to_pylist()
        if r["series_instance_uid"] == stored_uid
    ]

    mlflow.set_tracking_uri(get_settings().tracking_uri)
    model = mlflow.pyfunc.load_model(trained.model_uri)
    out = model.predict(
        pd.DataFrame(
            {
                "series": [series, None],
                "pixels": [None, row["pixels"]],
                "shape": [None, row["shape"]],
                "dtype": [None, row["dtype"]],
                "profile": [None, row["profile"]],
            }
        )
    )
    from_files, from_row = (np.asarray(v) for v in out["image_embedding"])
    assert float(from_files @ from_row) > 0.999  # the same volume: only int16 rounding of HU differs


def test_a_3d_vit_needs_cubic_volumes(volumes: tuple[Path, Path]) -> None:
    exp = _experiment()
    vit = exp.model.image.model_copy(update={"arch": "vit", "input_size": 64, "patch_size": 16})
    exp = exp.model_copy(update={"model": exp.model.model_copy(update={"image": vit})})
    view = volume_view(DatasetStore(str(volumes[1])))
    with pytest.raises(ConfigError, match="3D ViT takes volumes of 64 voxels"):
        check_trainable(view, exp)


def test_a_3d_model_is_evaluated_on_volume_studies(trained: TrainSummary, volumes: tuple[Path, Path]) -> None:
    from radpipe.evaluate.run import evaluate

    summary = evaluate(trained.model_uri, str(volumes[1]), get_settings(), resamples=100)
    assert summary.images["test"] >= 2  # series of the test split, not radiographs
    assert 0.0 <= summary.metrics["zeroshot_auroc_macro"] <= 1.0
    assert "retrieval_image_to_text_recall_at_5" in summary.metrics
