"""Radiographs and CT/MR volumes in one model (RadFM) for real: one Ray Train run over modality-pure batches of
both, one registered pyfunc that embeds and writes for a radiograph DICOM file and a CT series given as its
files (loaded in a process without radpipe's CLI), and evaluation per modality with zero-shot modality
recognition."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from mlflow import MlflowClient

from radpipe.dataset.store import DatasetStore
from radpipe.model.config import ExperimentConfig
from radpipe.settings import get_settings
from radpipe.train.data import mixed_view
from radpipe.train.run import TrainSummary, train
from tests.train.tiny import quick_experiment, validated_archive

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = Path(__file__).parents[2] / "configs" / "smoke-mixed.yaml"
STEPS = 8  # two of them on volumes (radiograph_fraction 0.75)


def _experiment() -> ExperimentConfig:
    return quick_experiment(CONFIG, STEPS, "radpipe-tests-mixed")


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return validated_archive(tmp_path_factory.mktemp("mixed"), 60, 40, 5)


@pytest.fixture(scope="module")
def trained(both: tuple[Path, Path], local_ray: None) -> TrainSummary:
    return train(str(both[1]), _experiment(), get_settings())


def test_every_text_starts_with_its_examination(both: tuple[Path, Path]) -> None:
    view = mixed_view(DatasetStore(str(both[1])))
    train = view.texts["train"]
    images, volumes = view.modality_texts("train", False), view.modality_texts("train", True)
    assert images and volumes and len(images) + len(volumes) == len(train)
    assert all(text.startswith("Radiograph of the chest. ") for text in images.values())
    kinds = {text.split(" of the chest.")[0] for text in volumes.values()}
    assert kinds == {"CT", "MR"}  # the synthetic archive's series: mostly CT, one in four MR
    assert view.targets["train"].keys() == train.keys()
    swaps = view.swaps["train"]  # each report under another modality's examination line: a hard negative
    assert swaps.keys() == train.keys()
    for key, text in train.items():
        exam, _, report = text.partition(" of the chest. ")
        other, _, same = swaps[key].partition(" of the chest. ")
        assert same == report and other != exam and other in {"Radiograph", "CT", "MR"}


def test_one_run_trains_on_both_and_registers_one_model(trained: TrainSummary) -> None:
    client = MlflowClient(get_settings().tracking_uri)
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED" and trained.steps == STEPS
    assert trained.profile == "cxr-224+ct-small,mr-small"
    assert run.data.params["model.image.radiographs"] == "True"
    assert run.data.metrics["volume_steps"] == 2  # steps 0 and 4 of 8
    assert "val_caption_loss" in run.data.metrics and "val_volume_caption_loss" in run.data.metrics


def test_one_registered_model_embeds_and_writes_for_a_radiograph_and_a_ct_series(
    trained: TrainSummary, both: tuple[Path, Path], tmp_path: Path
) -> None:
    archive = both[0]
    manifest = json.loads((archive / "volumes_manifest.json").read_text())
    ct_uid = next(
        r["series_instance_uid"] for r in manifest["series"] if (r["modality"], r["case"]) == ("CT", "standard")
    )
    series, radiograph = [], None
    for path in sorted((archive / "dicom").rglob("*.dcm")):
        ds = pydicom.dcmread(io.BytesIO(path.read_bytes()), stop_before_pixels=True)
        if ds.SeriesInstanceUID == ct_uid:
            series.append(str(path))
        elif ds.Modality in ("CR", "DX") and radiograph is None:
            radiograph = str(path)
    assert series and radiograph
    # A fresh interpreter with only MLflow's API: what a downstream user's process does.
    script = f"""
import json, sys
from pathlib import Path
import mlflow, pandas as pd
mlflow.set_tracking_uri({get_settings().tracking_uri!r})
model = mlflow.pyfunc.load_model({trained.model_uri!r})
series = [Path(p).read_bytes() for p in {series!r}]
frame = pd.DataFrame({{"dicom": [Path({radiograph!r}).read_bytes(), None], "series": [None, series]}})
out = model.predict(frame, params={{"max_length": 24}})
print(json.dumps({{"cli": "radpipe.cli" in sys.modules, "dims": [len(v) for v in out["image_embedding"]],
                   "reports": [r if isinstance(r, str) else None for r in out["report"]]}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cli"] is False
    assert result["dims"] == [64, 64]
    assert all(isinstance(report, str) for report in result["reports"])


def test_evaluation_scores_each_modality_and_recognises_them(trained: TrainSummary, both: tuple[Path, Path]) -> None:
    from radpipe.evaluate.protocol import version_tag
    from radpipe.evaluate.run import evaluate

    summary = evaluate(trained.model_uri, str(both[1]), get_settings(), resamples=50)
    m = summary.metrics
    assert summary.images["test"] >= 2 and summary.images["volume_test"] >= 2
    assert 0.0 <= m["zeroshot_auroc_macro"] <= 1.0  # radiographs
    assert 0.0 <= m["volume_retrieval_image_to_text_recall_at_5"] <= 1.0  # CT/MR series
    assert 0.0 <= m["volume_generation_f1_macro"] <= 1.0
    assert m["modality_accuracy_ci_low"] <= m["modality_accuracy"] <= m["modality_accuracy_ci_high"]
    assert {"modality_accuracy_radiograph", "modality_accuracy_CT"} <= set(m)
    tags = (
        MlflowClient(get_settings().tracking_uri).get_model_version("radpipe-tests-mixed", trained.model_version).tags
    )
    assert float(tags[version_tag(summary.dataset_version, "modality_accuracy")]) == pytest.approx(
        m["modality_accuracy"], abs=1e-6
    )


def test_finding_and_report_fine_tunes_start_from_a_model_of_both(
    trained: TrainSummary, both: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Both fine-tunes read radiographs: through the 3D encoder's plane path, its last stage included."""
    import mlflow
    import pandas as pd

    from radpipe.cli import main
    from radpipe.finetune.config import finetune_config
    from radpipe.finetune.run import finetune

    config = finetune_config(mode="partial", shots=2, epochs=2)
    summary = finetune(trained.model_uri, str(both[1]), "pneumothorax", config, get_settings())
    radiograph = next(
        p.read_bytes()
        for p in sorted((both[0] / "dicom").rglob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).Modality in ("CR", "DX")
    )
    probability = mlflow.pyfunc.load_model(summary.model_uri).predict(pd.DataFrame({"dicom": [radiograph]}))
    assert 0.0 <= probability["probability"][0] <= 1.0
    argv = ["finetune", trained.model_uri, str(both[1]), "--task", "report", "--epochs", "2", "--shots", "8"]
    assert main(argv) == 0
    assert "generation_f1_macro" in capsys.readouterr().out
