"""`radpipe finetune` on the command line: metrics and the registered URI, or one line on a mistake."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.registry import register_untrained

pytestmark = pytest.mark.integration


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "finetune", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def parent(trainable: tuple[Path, Path]) -> str:
    return register_untrained(trainable[1], f"ft-cli-{uuid.uuid4().hex[:8]}", seed=6)


@pytest.mark.slow
def test_finetune_prints_the_auroc_and_the_registered_model(parent: str, trainable: tuple[Path, Path]) -> None:
    result = _run(parent, str(trainable[1]), "--label", "pneumothorax", "--epochs", "5", "--shots", "3")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pneumothorax (frozen, 3 shots): trained on 3 positive, ")
    assert lines[1].startswith("finetune_auroc ") and lines[2].startswith("model: models:/radpipe-pneumothorax/")
    assert lines[3].startswith(f"from: {parent} and dataset ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--label", "effusion"), "unknown label 'effusion'; one of: no_finding"),
        (("--label", "pneumothorax", "--shots", "0"), "setting shots: Input should be greater than or equal to 1"),
        (("--label", "fracture"), "no image in the train split has a report stating fracture present"),
    ],
)
def test_a_mistake_is_one_line(parent: str, trainable: tuple[Path, Path], args: tuple[str, ...], message: str) -> None:
    result = _run(parent, str(trainable[1]), *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unknown_model_is_one_line(trainable: tuple[Path, Path]) -> None:
    result = _run("models:/radpipe-no-such-model@champion", str(trainable[1]), "--label", "pneumothorax")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "MLflow refused to find the model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
