"""Kill a Ray Train worker mid-run: the run resumes from its last checkpoint and ends at the right step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from tests.train.tiny import tiny_config, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _train_workers(root: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in root.children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


STEPS = 200


def _registered_step(home: Path) -> int | None:
    """The step of the latest checkpoint Ray Train's controller has registered, or None."""
    for snapshot in (home / "ray-results").glob("*/checkpoint_manager_snapshot.json"):
        try:
            latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result")
        except ValueError:  # being written
            continue
        if latest:
            return int(latest["metrics"]["step"])
    return None


def test_killed_worker_resumes_from_checkpoint(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    # Enough steps that the kill lands mid-run: with the split kept in the object store, steps are fast.
    config = tiny_config(steps=STEPS, checkpoint_every=10, log_every=10, val_every=STEPS)
    config["model"]["image"]["input_size"] = 128
    config["train"]["batch_size"] = 16
    path = write_config(tmp_path / "resume.yaml", config)
    env = {**os.environ, "RADPIPE_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)  # mlflow.set_tracking_uri exports it; this run must use its own home
    command = [sys.executable, "-m", "radpipe.cli", "train", str(trainable[1]), "--config", str(path)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        # Kill once Ray's controller has registered a checkpoint (its snapshot names one): a checkpoint folder
        # a worker wrote but the controller has not polled yet is lost with the worker, and steps are fast now.
        while _registered_step(home) is None:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "no checkpoint registered within 300 s"
            time.sleep(0.2)
        workers = _train_workers(psutil.Process(proc.pid))
        assert workers, "no Ray Train worker process found"
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert f"trained {STEPS} steps" in output
    assert "resumed from the checkpoint at step" in output

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("radpipe-tests").experiment_id])
    resumed = client.get_metric_history(run.info.run_id, "resumed_from_step")
    assert resumed and all(m.value > 0 and m.value % 10 == 0 for m in resumed)
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "train_loss")}
    assert max(steps) == STEPS and steps == set(range(10, STEPS + 1, 10))
