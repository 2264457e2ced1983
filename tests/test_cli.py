"""User mistakes give one clear line and a non-zero exit, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "radpipe.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "--dicom", "/nonexistent/archive", "--out", "/tmp/x"), "source does not exist"),
        (("ingest", "--out", "/tmp/x"), "nothing to ingest"),
        (("ingest", "--dicom", ".", "--out", "/tmp/x", "--profile", "bogus"), "unknown profile"),
        (("summary", "/nonexistent/dataset"), "dataset not found"),
        (("synth", "/tmp/radpipe-never", "--studies", "0"), "at least 1"),
        (("synth", "/tmp/radpipe-never", "--workers", "0"), "--workers must be at least 1"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr


def test_pseudonym_reads_stdin_and_matches_arguments(tmp_path: Path) -> None:
    by_arg = _run("pseudonym", "--kind", "patient_id", "MRN1", "MRN2").stdout.split()
    by_stdin = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "pseudonym", "--kind", "patient_id"],
        input="MRN1\nMRN2\n",
        capture_output=True,
        text=True,
    ).stdout.split()
    assert by_arg == by_stdin and len(set(by_arg)) == 2


def test_train_refuses_unvalidated_dataset_in_one_line(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    dataset = tmp_path / "dataset"
    shutil.copytree(trainable[1], dataset, ignore=shutil.ignore_patterns("_quality"))
    result = _run("train", str(dataset), "--config", "configs/smoke.yaml")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "radpipe validate" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_train_with_a_bad_config_is_one_line(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_size: 1\n")
    result = _run("train", str(trainable[1]), "--config", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "train.batch_size" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("command", ["evaluate", "promote", "embed"])
def test_model_commands_name_a_missing_model_in_one_line(command: str, trainable: tuple[Path, Path]) -> None:
    result = _run(command, "models:/no-such-model@champion", str(trainable[1]))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no-such-model" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_evaluate_refuses_a_dataset_that_is_not_one(tmp_path: Path) -> None:
    result = _run("evaluate", "models:/radpipe-foundation@champion", str(tmp_path))
    assert result.returncode == 1 and "not a radpipe dataset" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--finetune", "pneumothorx"), "unknown label 'pneumothorx'"),
        (("--metric", "val_top1"), "unknown promotion metric"),
        (("--shots", "0"), "shots"),
        (("--config", "/nonexistent.yaml"), "nonexistent.yaml"),
    ],
)
def test_pipeline_refuses_bad_arguments_before_it_starts(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = _run("pipeline", "--dicom", str(tmp_path), "--out", str(tmp_path / "dataset"), *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "dataset").exists()  # nothing ingested


@pytest.mark.parametrize("command", ["evaluate", "finetune"])
def test_a_negative_seed_is_refused_by_the_parser(command: str) -> None:
    extra = ("--label", "pneumothorax") if command == "finetune" else ()
    result = _run(command, "models:/m@champion", "/tmp", "--seed", "-1", *extra)
    assert result.returncode == 2 and "must be 0 or more" in result.stderr and "Traceback" not in result.stderr
