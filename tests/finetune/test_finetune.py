"""`radpipe finetune` end to end on a real registered (untrained) foundation model and the curated test dataset."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from mlflow import MlflowClient

from radpipe import tracking
from radpipe.commands import finetune_model
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.errors import ConfigError, SourceError
from radpipe.evaluate.data import labelled_split
from radpipe.finetune.config import finetune_config
from radpipe.finetune.data import known_rows
from radpipe.finetune.run import FinetuneSummary, finetune
from radpipe.quality.status import NotValidated, require_validated
from radpipe.settings import get_settings
from radpipe.tracking import TrackingError
from tests.registry import register_untrained

pytestmark = pytest.mark.integration

LABEL = "pneumothorax"  # present and absent in both the train and the test split of the `trainable` dataset
EPOCHS = 30


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def client() -> MlflowClient:
    tracking.configure(get_settings())
    return MlflowClient(get_settings().tracking_uri)


@pytest.fixture(scope="module")
def parent(trainable: tuple[Path, Path], client: MlflowClient) -> str:
    """A registered foundation model with @champion on it; returns the pinned URI."""
    uri = register_untrained(trainable[1], _unique("ft-parent"), seed=5)
    name, version = uri.removeprefix("models:/").split("/")
    client.set_registered_model_alias(name, "champion", version)
    return uri


@pytest.fixture(scope="module")
def tuned(parent: str, trainable: tuple[Path, Path]) -> FinetuneSummary:
    champion = parent.rsplit("/", 1)[0] + "@champion"
    return finetune(champion, str(trainable[1]), LABEL, finetune_config(epochs=EPOCHS), get_settings())


def _stored_and_raw(trainable: tuple[Path, Path], deid: Deidentifier) -> tuple[dict[str, object], bytes]:
    """A DICOM file of the archive and its ingested images/ row (found by its pseudonymised UID)."""
    path = sorted((trainable[0] / "dicom").rglob("*.dcm"))[0]
    uid = deid.pseudonymizer.pseudonym("uid", str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID))
    images = DatasetStore(str(trainable[1])).read_table("images").to_pylist()
    return next(row for row in images if row["sop_instance_uid"] == uid), path.read_bytes()


def _frame(stored: dict[str, object], raw: bytes) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dicom": [raw, None, None],
            "pixels": [None, stored["pixels"], None],
            "shape": [None, list(stored["shape"]), None],  # type: ignore[call-overload]
            "dtype": [None, stored["dtype"], None],
            "text": [None, None, "Small left pneumothorax."],
        }
    )


def test_registered_version_records_its_parent_and_dataset(
    tuned: FinetuneSummary, parent: str, trainable: tuple[Path, Path], client: MlflowClient
) -> None:
    version = require_validated(DatasetStore(str(trainable[1])))
    assert tuned.model_name == "radpipe-pneumothorax"
    assert tuned.model_uri == f"models:/radpipe-pneumothorax/{tuned.model_version}"
    assert tuned.parent_uri == parent  # the alias was pinned to the version it named
    expected = {
        "parent_model": parent,
        "parent_version": parent.rsplit("/", 1)[1],
        "dataset_version": version,
        "label": LABEL,
        "mode": "frozen",
        "shots": "all",
    }
    model_version = client.get_model_version("radpipe-pneumothorax", tuned.model_version)
    assert expected.items() <= model_version.tags.items()
    run = client.get_run(tuned.run_id)
    assert run.info.status == "FINISHED" and model_version.run_id == tuned.run_id
    assert expected.items() <= run.data.tags.items()
    assert run.info.experiment_id == client.get_experiment_by_name("radpipe-finetune").experiment_id
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == version


def test_metrics_count_the_rows_used_and_bound_the_auroc(
    tuned: FinetuneSummary, trainable: tuple[Path, Path], client: MlflowClient
) -> None:
    store = DatasetStore(str(trainable[1]))
    train, test = known_rows(labelled_split(store, "train"), LABEL), known_rows(labelled_split(store, "test"), LABEL)
    m = tuned.metrics
    assert (m["finetune_train_positives"], m["finetune_train_negatives"]) == (train.positives, train.negatives)
    assert (m["finetune_test_positives"], m["finetune_test_negatives"]) == (test.positives, test.negatives)
    assert 0 <= m["finetune_auroc_low"] <= m["finetune_auroc"] <= m["finetune_auroc_high"] <= 1
    logged = client.get_run(tuned.run_id).data.metrics
    for name in ("finetune_auroc", "finetune_auroc_low", "finetune_auroc_high", "finetune_train_positives"):
        assert logged[name] == pytest.approx(m[name])
    losses = client.get_metric_history(tuned.run_id, "finetune_train_loss")
    assert losses[-1].step == EPOCHS and losses[-1].value < losses[0].value


def test_registered_fine_tune_gives_one_probability_for_a_dicom_file_and_its_stored_pixels(
    tuned: FinetuneSummary, trainable: tuple[Path, Path], deid: Deidentifier
) -> None:
    model = mlflow.pyfunc.load_model(tuned.model_uri)
    stored, raw = _stored_and_raw(trainable, deid)
    out = model.predict(_frame(stored, raw))
    assert list(out.columns) == ["probability"]
    from_dicom, from_pixels, text_only = out["probability"].tolist()
    assert 0.0 <= from_dicom <= 1.0
    # The model carries the parent's profile: a raw file scores exactly like its ingested, preprocessed pixels.
    assert from_dicom == pytest.approx(from_pixels, abs=1e-5)
    assert np.isnan(text_only)  # a text-only row has nothing to classify


def test_fine_tune_package_carries_its_code_and_the_parents_files(tuned: FinetuneSummary, parent: str) -> None:
    from mlflow.artifacts import download_artifacts

    folder = Path(download_artifacts(tuned.model_uri))
    assert (folder / "code" / "radpipe" / "finetune" / "pyfunc.py").exists()  # loads where radpipe is not installed
    parent_folder = Path(download_artifacts(parent))
    for name in ("spec.json", "tokenizer.json", "weights.pt"):  # frozen: the encoder is the parent's, byte for byte
        assert (folder / "artifacts" / name).read_bytes() == (parent_folder / "artifacts" / name).read_bytes()
    assert (folder / "artifacts" / "head.pt").exists()


def test_fine_tune_is_reproducible_for_a_seed(
    tuned: FinetuneSummary, parent: str, trainable: tuple[Path, Path], deid: Deidentifier
) -> None:
    again = finetune(parent, str(trainable[1]), LABEL, finetune_config(epochs=EPOCHS), get_settings())
    assert int(again.model_version) == int(tuned.model_version) + 1
    assert {k: v for k, v in again.metrics.items()} == tuned.metrics
    stored, raw = _stored_and_raw(trainable, deid)
    first = mlflow.pyfunc.load_model(tuned.model_uri).predict(_frame(stored, raw))
    second = mlflow.pyfunc.load_model(again.model_uri).predict(_frame(stored, raw))
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.slow
def test_partial_few_shot_fine_tune_trains_the_last_stage_on_n_positives(
    parent: str, trainable: tuple[Path, Path], deid: Deidentifier, client: MlflowClient
) -> None:
    config = finetune_config(mode="partial", shots=2, epochs=5)
    summary = finetune(parent, str(trainable[1]), "lung-lesion", config, get_settings())
    assert summary.model_name == "radpipe-lung-lesion" and summary.metrics["finetune_train_positives"] == 2
    tags = client.get_model_version(summary.model_name, summary.model_version).tags
    assert (tags["mode"], tags["shots"], tags["label"]) == ("partial", "2", "lung_lesion")
    tuned_state = tracking.load_python_model(summary.model_uri).embedder.model.state_dict()
    parent_state = tracking.load_python_model(parent).embedder.model.state_dict()
    changed = {k for k in parent_state if not torch.equal(parent_state[k], tuned_state[k])}
    assert changed and all(k.startswith(("image_encoder.net.layer4.", "image_projection.")) for k in changed)
    stored, raw = _stored_and_raw(trainable, deid)
    out = mlflow.pyfunc.load_model(summary.model_uri).predict(_frame(stored, raw))["probability"]
    assert 0.0 <= out[0] <= 1.0 and out[0] == pytest.approx(out[1], abs=1e-5)


def _label_missing_in_test(store: DatasetStore) -> str:
    """A finding the train split can learn (both classes) whose test split lacks positives: it cannot be measured."""
    train, test = labelled_split(store, "train"), labelled_split(store, "test")
    for name in train.labels:
        learnable = known_rows(train, name).positives > 0 and known_rows(train, name).negatives > 0
        if learnable and known_rows(test, name).positives == 0:
            return name
    raise AssertionError("the trainable dataset has no such finding; the test needs another one")


def test_refusals_are_one_line_and_start_no_run(
    parent: str, trainable: tuple[Path, Path], client: MlflowClient
) -> None:
    dataset = str(trainable[1])
    unmeasurable = _label_missing_in_test(DatasetStore(dataset))
    runs_before = _finetune_runs(client)
    cases: list[tuple[str, str, dict[str, object], type[Exception], str]] = [
        (parent, "effusion", {}, ConfigError, "unknown label 'effusion'; one of: no_finding"),
        (parent, "fracture", {}, SourceError, "no image in the train split has a report stating fracture present"),
        (parent, LABEL, {"shots": 500}, SourceError, f"--shots 500 asked for more {LABEL} positives"),
        (parent, unmeasurable, {}, SourceError, f"the test split has no positive image for {unmeasurable}"),
        ("models:/radpipe-no-such-model@champion", LABEL, {}, TrackingError, "MLflow refused to find the model"),
    ]
    for uri, label, values, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            finetune(uri, dataset, label, finetune_config(epochs=1, **values), get_settings())
        assert "\n" not in str(caught.value), str(caught.value)
    assert _finetune_runs(client) == runs_before


def _finetune_runs(client: MlflowClient) -> int:
    experiment = client.get_experiment_by_name("radpipe-finetune")
    return len(client.search_runs([experiment.experiment_id])) if experiment else 0


def test_refuses_a_model_of_another_profile(trainable: tuple[Path, Path]) -> None:
    from radpipe.model.clip import ContrastiveModel
    from radpipe.model.package import log_foundation_model
    from radpipe.train.data import training_view
    from radpipe.train.run import build_tokenizer
    from tests.train.tiny import tiny_experiment

    exp = tiny_experiment()
    tokenizer, tokenizer_json = build_tokenizer(training_view(DatasetStore(str(trainable[1]))), exp)
    model = ContrastiveModel(exp.model, tokenizer.vocab_size)
    run_id = tracking.start_run("radpipe-tests", "other-profile", {}, {})
    name = _unique("ft-other-profile")
    _, uri = log_foundation_model(run_id, exp.model, "cxr-512", model.state_dict(), tokenizer_json, name, {})
    with pytest.raises(ConfigError, match=f"{uri} was trained on profile cxr-512, the dataset holds cxr-224"):
        finetune(uri, str(trainable[1]), LABEL, finetune_config(epochs=1), get_settings())


def test_context_refuses_a_dataset_that_has_not_passed_validation(
    parent: str, trainable: tuple[Path, Path], tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset, ignore=shutil.ignore_patterns("_quality"))
    with pytest.raises(NotValidated, match="has not been validated: run `radpipe validate DATASET` first"):
        finetune_model(parent, str(dataset), LABEL)
    with pytest.raises(SourceError, match="not a radpipe dataset"):
        finetune_model(parent, str(tmp_path / "nothing"), LABEL)
    with pytest.raises(ConfigError, match="setting mode"):
        finetune_model(parent, str(dataset), LABEL, mode="full")
