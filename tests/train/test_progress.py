"""While Ray trains, the terminal gets a progress line from the driver (the workers' output goes to Ray's logs)."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest

from radpipe.train.run import training_progress


def test_training_progress_shows_the_last_logged_step_and_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    run_id = client.create_run(client.create_experiment("progress")).info.run_id
    lines: list[str] = []
    with training_progress(run_id, 300, lines.append, every=0.2):
        time.sleep(0.5)  # nothing logged yet: no line
        assert lines == []
        client.log_metric(run_id, "train_loss", 2.5, step=10)
        client.log_metric(run_id, "train_loss", 2.25, step=20)
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # no new step: no second line
    assert len(lines) == 1 and lines[0].startswith("training: step 20/300, train_loss 2.250")
