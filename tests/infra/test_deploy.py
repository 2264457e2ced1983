"""Deployments for real: a Prefect server, infra/deploy.sh, a worker, and a scheduled flow run to completion."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from radpipe.synth import write_archive

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"no Prefect server at {url} after {seconds} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-home")
    url = f"http://127.0.0.1:{_free_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    port = url.rsplit(":", 1)[1].split("/")[0]
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_healthy(url)
        yield env
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)


def test_deploy_registers_the_scheduled_deployments_and_a_worker_runs_one(
    server: dict[str, str], tmp_path: Path
) -> None:
    listed = subprocess.run(
        [str(ROOT / "infra" / "deploy.sh")],
        env={**server, "BIN": str(BIN)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    for name in ("nightly-ingest/nightly-ingest", "weekly-train/weekly-train"):
        assert name in listed.stdout

    write_archive(tmp_path / "archive", studies=6, seed=2)
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "radpipe"],
        env={**server, "RADPIPE_REPO": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        run = subprocess.run(
            [
                str(BIN / "prefect"),
                "deployment",
                "run",
                "nightly-ingest/nightly-ingest",
                "--watch",
                "--param",
                f"dicom={tmp_path / 'archive' / 'dicom'}",
                "--param",
                f"reports={tmp_path / 'archive' / 'reports'}",
                "--param",
                f"dataset={tmp_path / 'dataset'}",
            ],
            env=server,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Completed" in run.stdout
    assert (tmp_path / "dataset" / "_quality" / "summary.json").exists()  # ingested, gated, validated
