"""Generative pretraining for real (objective coca): Ray Train, MLflow, the registered pyfunc writing reports,
and `radpipe generate` on DICOM files."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from radpipe.cli import main
from radpipe.dataset.store import DatasetStore
from radpipe.model.config import ExperimentConfig
from radpipe.settings import get_settings
from radpipe.train.data import training_view
from radpipe.train.run import TrainSummary, train
from tests.train.tiny import tiny_coca_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(trainable: tuple[Path, Path], local_ray: None) -> TrainSummary:
    exp = ExperimentConfig.model_validate(tiny_coca_config(steps=12))
    return train(str(trainable[1]), exp, get_settings())


def test_the_targets_carry_the_reasoning_traces_the_reports_have(trainable: tuple[Path, Path]) -> None:
    store = DatasetStore(str(trainable[1]))
    with_traces = training_view(store, reasoning=True).targets["train"]
    without = training_view(store, reasoning=False).targets["train"]
    assert with_traces.keys() == without.keys()
    traced = [uid for uid, target in with_traces.items() if "[REASONING]" in target]
    assert 0 < len(traced) < len(with_traces)  # the synthetic archive gives about 30% of reports a trace
    assert not any("[REASONING]" in target for target in without.values())
    assert all(t.startswith("[FINDINGS]") and "[IMPRESSION]" in t for t in with_traces.values())


def test_the_run_logs_the_caption_loss_and_registers_a_report_writer(trained: TrainSummary) -> None:
    client = MlflowClient(get_settings().tracking_uri)
    run = client.get_run(trained.run_id)
    assert run.data.params["model.objective"] == "coca"
    assert [m.step for m in client.get_metric_history(trained.run_id, "val_caption_loss")] == [6, 12]
    model = mlflow.pyfunc.load_model(trained.model_uri)
    outputs = {spec.name for spec in model.metadata.get_output_schema().inputs}
    assert {"report", "findings", "reasoning", "impression", "image_embedding"} <= outputs
    assert {p.name for p in model.metadata.get_params_schema().params} >= {"num_beams", "seed", "max_length"}


def test_the_registered_model_embeds_and_writes_for_a_dicom_file(
    trained: TrainSummary, trainable: tuple[Path, Path]
) -> None:
    model = mlflow.pyfunc.load_model(f"models:/radpipe-foundation/{trained.model_version}")
    raw = sorted((trainable[0] / "dicom").rglob("*.dcm"))[0].read_bytes()
    frame = pd.DataFrame({"dicom": [raw, None], "text": [None, "No pneumothorax."]})
    out = model.predict(frame, params={"max_length": 24})
    assert len(out["image_embedding"][0]) == 32 and len(out["text_embedding"][1]) == 32
    assert isinstance(out["report"][0], str) and isinstance(out["findings"][0], str)
    assert pd.isna(out["report"][1])  # a text-only row gets no report (MLflow shows None as NaN)
    again = model.predict(frame, params={"max_length": 24})
    assert again["report"][0] == out["report"][0]  # greedy: the same report every time
    beams = model.predict(frame, params={"max_length": 24, "num_beams": 2})
    assert isinstance(beams["report"][0], str)
    plain = model.predict(frame, params={"generate": False})
    assert "report" not in plain.columns


def test_radpipe_generate_prints_a_report_per_file(
    trained: TrainSummary, trainable: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(p) for p in sorted((trainable[0] / "dicom").rglob("*.dcm"))[:2]]
    assert main(["generate", trained.model_uri, *files, "--max-length", "24", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["source"] for line in lines] == files
    assert all(line["model"] == trained.model_uri and isinstance(line["report"], str) for line in lines)
    assert main(["generate", trained.model_uri, str(Path(files[0]).parent / "missing.dcm")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["generate", trained.model_uri, files[0], "--beams", "0"]) == 1
    assert "generation setting num_beams: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_evaluation_scores_the_written_reports_and_tags_the_version(
    trained: TrainSummary, trainable: tuple[Path, Path]
) -> None:
    from radpipe.evaluate.protocol import version_tag
    from radpipe.evaluate.run import evaluate

    summary = evaluate(trained.model_uri, str(trainable[1]), get_settings(), resamples=50)
    m = summary.metrics
    for name in ("generation_f1_macro", "generation_bleu4", "generation_rougeL", "zeroshot_auroc_macro"):
        assert 0.0 <= m[name] <= 1.0, name
        assert m[f"{name}_ci_low"] <= m[name] <= m[f"{name}_ci_high"] or name == "zeroshot_auroc_macro"
    assert m["reasoning_consistency_reference"] == pytest.approx(1.0)  # the references argue what they conclude
    client = MlflowClient(get_settings().tracking_uri)
    tables = {a.path for a in client.list_artifacts(summary.run_id, "tables")}
    assert "tables/generated_reports.md" in tables
    side_by_side = client.download_artifacts(summary.run_id, "tables/generated_reports.md")
    rows = Path(side_by_side).read_text().splitlines()[2:]
    assert len(rows) == min(8, summary.images["test_pairs"]) and all(
        row.startswith(f"| {i} | ") for i, row in enumerate(rows, start=1)
    )
    tags = client.get_model_version("radpipe-foundation", trained.model_version).tags
    assert float(tags[version_tag(summary.dataset_version, "generation_f1_macro")]) == pytest.approx(
        m["generation_f1_macro"], abs=1e-6
    )


def test_a_partial_fine_tune_from_a_generative_model_keeps_its_decoder(
    trained: TrainSummary, trainable: tuple[Path, Path]
) -> None:
    """Fine-tunes start from the image encoder of a CoCa model as from a contrastive one; the fine-tune's
    package carries the decoder's vocabulary, so it loads (the decoder's weights unchanged)."""
    import torch

    from radpipe import tracking
    from radpipe.finetune.config import finetune_config
    from radpipe.finetune.run import finetune

    config = finetune_config(mode="partial", shots=2, epochs=3)
    summary = finetune(trained.model_uri, str(trainable[1]), "pneumothorax", config, get_settings())
    tuned = tracking.load_python_model(summary.model_uri).embedder.model.state_dict()
    parent = tracking.load_python_model(trained.model_uri).embedder.model.state_dict()
    assert any(k.startswith("decoder.") for k in tuned)
    changed = {k for k in parent if not torch.equal(parent[k], tuned[k])}
    assert changed and not any(k.startswith("decoder.") for k in changed)
    raw = sorted((trainable[0] / "dicom").rglob("*.dcm"))[0].read_bytes()
    probability = mlflow.pyfunc.load_model(summary.model_uri).predict(pd.DataFrame({"dicom": [raw]}))["probability"]
    assert 0.0 <= probability[0] <= 1.0


def test_a_report_fine_tune_adapts_the_decoder_and_registers_radpipe_report(
    trained: TrainSummary, trainable: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from radpipe import tracking

    argv = ["finetune", trained.model_uri, str(trainable[1]), "--task", "report", "--epochs", "8", "--shots", "12"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "generation_f1_macro" in printed and "-> " in printed
    uri = next(line.split()[1] for line in printed.splitlines() if line.startswith("model: "))
    assert uri.startswith("models:/radpipe-report/")
    client = MlflowClient(get_settings().tracking_uri)
    name, number = uri.removeprefix("models:/").split("/")
    version = client.get_model_version(name, number)
    assert version.tags["parent_model"] == trained.model_uri and version.tags["task"] == "report"
    run = client.get_run(version.run_id)
    losses = [m.value for m in client.get_metric_history(version.run_id, "report_finetune_epoch_loss")]
    assert len(losses) == 8 and losses[-1] < losses[0]  # the decoder learnt the dataset's reports
    for key in ("generation_f1_macro", "generation_f1_macro_before", "generation_bleu4", "generation_rougeL_before"):
        assert key in run.data.metrics, key
    tuned = tracking.load_python_model(uri).embedder.model.state_dict()
    parent = tracking.load_python_model(trained.model_uri).embedder.model.state_dict()
    changed = {k for k in parent if not torch.equal(parent[k], tuned[k])}
    assert changed and all(k.startswith("decoder.") for k in changed)  # the image encoder stays as it was
    raw = sorted((trainable[0] / "dicom").rglob("*.dcm"))[0].read_bytes()
    written = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"dicom": [raw]}), params={"max_length": 16})
    assert isinstance(written["report"][0], str)
    assert main(["finetune", trained.model_uri, str(trainable[1]), "--task", "report", "--label", "x"]) == 1
    assert "--label and --mode do not apply" in capsys.readouterr().err
