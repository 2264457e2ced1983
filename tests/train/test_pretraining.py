"""Pretraining for real: Ray Train workers, Ray Data stream, MLflow on SQLite, the registered pyfunc."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.quality.status import require_validated
from radpipe.settings import get_settings
from radpipe.train.run import TrainSummary, train
from tests.train.tiny import tiny_experiment

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(trainable: tuple[Path, Path], local_ray: None) -> TrainSummary:
    return train(str(trainable[1]), tiny_experiment(), get_settings())


@pytest.fixture(scope="module")
def client() -> MlflowClient:
    mlflow.set_tracking_uri(get_settings().tracking_uri)
    return MlflowClient(get_settings().tracking_uri)


def test_run_records_config_data_version_and_curves(
    trained: TrainSummary, trainable: tuple[Path, Path], client: MlflowClient
) -> None:
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    version = require_validated(DatasetStore(str(trainable[1])))
    assert run.data.params["dataset_version"] == trained.dataset_version == version
    assert run.data.params["profile"] == "cxr-224"
    assert run.data.params["train.steps"] == "12" and run.data.params["model.image.arch"] == "resnet"
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == version
    assert str(trainable[1]) in dataset_input.dataset.source  # the source is JSON: {"uri": ...}
    losses = client.get_metric_history(trained.run_id, "train_loss")
    assert [m.step for m in losses] == [2, 4, 6, 8, 10, 12]
    assert all(np.isfinite(m.value) for m in losses)
    assert [m.step for m in client.get_metric_history(trained.run_id, "val_loss")] == [6, 12]
    assert client.get_metric_history(trained.run_id, "samples_per_second")[-1].value > 0
    assert 0.0 <= run.data.metrics["loader_wait_fraction_total"] < 1.0  # the whole loop, epoch boundaries in
    assert any(key.startswith("system/") for key in run.data.metrics)
    # Artifacts live under RADPIPE_HOME beside the SQLite store, never in the current folder.
    assert run.info.artifact_uri.startswith(get_settings().home.as_uri())
    assert not Path("mlruns").exists()


def test_model_is_registered_with_lineage_tags(trained: TrainSummary, client: MlflowClient) -> None:
    version = client.get_model_version("radpipe-foundation", trained.model_version)
    assert version.run_id == trained.run_id
    assert version.tags["dataset_version"] == trained.dataset_version
    assert version.tags["profile"] == "cxr-224"
    assert len(version.tags["git_commit"]) in (40, len("unknown"))


def test_registered_model_embeds_dicom_and_text_in_one_space(
    trained: TrainSummary, trainable: tuple[Path, Path], deid: Deidentifier, client: MlflowClient
) -> None:
    import pydicom

    model = mlflow.pyfunc.load_model(f"models:/radpipe-foundation/{trained.model_version}")
    path = sorted((trainable[0] / "dicom").rglob("*.dcm"))[0]
    raw = path.read_bytes()
    source_uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    uid = deid.pseudonymizer.pseudonym("uid", source_uid)
    images = DatasetStore(str(trainable[1])).read_table("images").to_pylist()
    stored = next(row for row in images if row["sop_instance_uid"] == uid)

    out = model.predict(
        pd.DataFrame(
            {
                "dicom": [raw, None, None],
                "pixels": [None, stored["pixels"], None],
                "shape": [None, list(stored["shape"]), None],
                "dtype": [None, stored["dtype"], None],
                "text": ["Small right pleural effusion.", None, "No acute cardiopulmonary process."],
            }
        )
    )
    from_dicom, from_pixels = np.array(out["image_embedding"][0]), np.array(out["image_embedding"][1])
    assert from_dicom.shape == (32,)
    # The model carries its profile: a raw DICOM file embeds exactly like its ingested, preprocessed pixels.
    np.testing.assert_allclose(from_dicom, from_pixels, atol=1e-4)
    assert np.linalg.norm(from_dicom) == pytest.approx(1.0, abs=1e-4)
    texts = np.array([out["text_embedding"][0], out["text_embedding"][2]])
    assert texts.shape == (2, 32) and out["text_embedding"][1] is None
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-4)
    assert out["image_embedding"][2] is None


def test_unreadable_image_input_names_the_row_only(trained: TrainSummary) -> None:
    model = mlflow.pyfunc.load_model(trained.model_uri)
    with pytest.raises(Exception, match="row 1: image input could not be read") as caught:
        model.predict(pd.DataFrame({"dicom": [None, b"not a dicom file"], "text": ["x", None]}))
    assert "\n" not in str(caught.value).strip()
    raw = np.zeros((512, 512), np.uint16)  # not an images/ row of this model's profile
    frame = pd.DataFrame({"pixels": [raw.tobytes()], "shape": [[512, 512]], "dtype": ["uint16"]})
    with pytest.raises(Exception, match="row 0: .*preprocessed with profile cxr-224"):
        model.predict(frame)


def test_model_carries_its_code_and_pinned_requirements(trained: TrainSummary) -> None:
    from mlflow.artifacts import download_artifacts

    folder = Path(download_artifacts(trained.model_uri))
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("torch==") for line in requirements)
    assert not any(line.startswith("radpipe") for line in requirements)  # travels as code, not from an index
    assert (folder / "code" / "radpipe" / "model" / "pyfunc.py").exists()


def test_loss_falls_with_more_steps(trainable: tuple[Path, Path], local_ray: None, client: MlflowClient) -> None:
    summary = train(str(trainable[1]), tiny_experiment(steps=40, log_every=10, val_every=40), get_settings())
    losses = [m.value for m in client.get_metric_history(summary.run_id, "train_loss")]
    assert len(losses) == 4
    assert losses[-1] < losses[0]


def test_two_ddp_workers_train_to_the_same_step_count(
    trainable: tuple[Path, Path], local_ray: None, client: MlflowClient
) -> None:
    exp = tiny_experiment(steps=6, checkpoint_every=3, val_every=6)
    exp = exp.model_copy(update={"scaling": exp.scaling.model_copy(update={"num_workers": 2})})
    summary = train(str(trainable[1]), exp, get_settings())
    assert summary.steps == 6
    history = client.get_metric_history(summary.run_id, "train_loss")
    assert [m.step for m in history] == [2, 4, 6]  # logged once (rank 0), not once per worker


def test_training_on_a_recorded_version_reads_that_version_after_the_dataset_changed(
    trainable: tuple[Path, Path], local_ray: None, tmp_path: Path, client: MlflowClient
) -> None:
    import shutil

    import pyarrow.compute as pc

    from radpipe.commands import validate
    from radpipe.dataset.commit import replace_table
    from radpipe.train.data import training_view

    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset)
    store = DatasetStore(str(dataset))
    version = require_validated(store)
    images_then = sorted(training_view(store).texts["train"])
    curation = store.read_table("curation")  # a later curation prunes a quarter of the training images
    pruned = pc.is_in(curation["sop_instance_uid"], value_set=pa.array(images_then[: len(images_then) // 4]))
    replace_table(store, "curation", curation.set_column(curation.schema.get_field_index("prune"), "prune", pruned))
    assert validate(str(dataset)).passed and require_validated(store) != version

    pinned = f"{dataset}@{version}"
    assert sorted(training_view(DatasetStore(pinned)).texts["train"]) == images_then
    summary = train(pinned, tiny_experiment(steps=4, log_every=2, val_every=4, checkpoint_every=4), get_settings())
    assert summary.dataset_version == version
    assert client.get_run(summary.run_id).data.params["dataset_version"] == version
