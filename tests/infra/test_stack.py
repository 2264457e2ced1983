"""make stack / make stack-down for real: PostgreSQL-backed MLflow, Prefect, Ray and Dask on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
PORTS = ("PG", "MLFLOW", "PREFECT", "RAY", "RAY_DASHBOARD", "DASK", "DASK_DASHBOARD")


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stack(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "infra" / "stack.sh"), action], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("stack-home")
    ports = dict(zip(PORTS, _free_ports(len(PORTS)), strict=True))
    env = {**os.environ, "RADPIPE_HOME": str(home), "BIN": str(BIN)}
    env |= {f"RADPIPE_STACK_{name}_PORT": str(port) for name, port in ports.items()}
    for variable in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "PREFECT_API_URL", "RADPIPE_DASK_ADDRESS"):
        env.pop(variable, None)
    try:
        up = _stack(env, "up")
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        yield env
    finally:
        down = _stack(env, "down")
        assert down.returncode == 0, down.stderr  # the script fails if any process is left behind


def _settings(stack: dict[str, str]) -> dict[str, str]:
    lines = (Path(stack["RADPIPE_HOME"]) / "stack.env").read_text().splitlines()
    pairs = (line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
    return dict(pairs)


def test_stack_env_points_at_every_service(stack: dict[str, str]) -> None:
    settings = _settings(stack)
    assert set(settings) >= {"PREFECT_API_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS", "RADPIPE_DASK_ADDRESS"}
    assert all("127.0.0.1" in settings[k] for k in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS"))


def test_the_services_answer_and_mlflow_keeps_runs_in_postgresql(stack: dict[str, str]) -> None:
    env = {**stack, **_settings(stack), "RAY_AUTH_MODE": "disabled"}
    check = """
import mlflow, ray, urllib.request
from distributed import Client
from radpipe.tracking import experiment_id  # get-or-create: a slow server's retried creation is no error
with mlflow.start_run(experiment_id=experiment_id(mlflow.MlflowClient(), "stack-test")) as run:
    mlflow.log_metric("x", 1.0)
ray.init(address=__import__("os").environ["RAY_ADDRESS"], logging_level="ERROR")
assert ray.cluster_resources()["CPU"] >= 1
with Client(__import__("os").environ["RADPIPE_DASK_ADDRESS"], timeout=30) as client:
    assert client.submit(sum, [1, 2]).result() == 3
urllib.request.urlopen(__import__("os").environ["PREFECT_API_URL"] + "/health", timeout=10)
print(run.info.run_id)
"""
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.strip().splitlines()[-1]
    port = stack["RADPIPE_STACK_PG_PORT"]
    rows = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            "mlflow",
            "-tAc",
            f"select count(*) from runs where run_uuid = '{run_id}'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rows.stdout.strip() == "1"  # the tracking server's store is PostgreSQL, not a file


def test_a_taken_port_is_one_clear_error(stack: dict[str, str], tmp_path: Path) -> None:
    # A second stack in another home, on the first stack's PostgreSQL port: refused before starting anything.
    env = {**stack, "RADPIPE_HOME": str(tmp_path / "other")}
    result = _stack(env, "up")
    assert result.returncode == 1
    assert f"port {stack['RADPIPE_STACK_PG_PORT']} (PostgreSQL) is taken" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_deployment_runs_through_the_stack(stack: dict[str, str], tmp_path: Path) -> None:
    """make deploy's steps against the stack's Prefect server; the nightly ingest on the stack's Dask."""
    from radpipe.synth import write_archive

    env = {**stack, **_settings(stack), "RADPIPE_REPO": str(ROOT)}
    deployed = subprocess.run([str(ROOT / "infra" / "deploy.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0 and "nightly-ingest" in deployed.stdout, deployed.stderr
    write_archive(tmp_path / "archive", studies=6, seed=4)
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "radpipe"],
        env=env,
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
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
    assert run.returncode == 0 and "Completed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    from radpipe.ops.table import read_ops

    rows = read_ops(Path(stack["RADPIPE_HOME"])).to_pylist()
    nightly = [r for r in rows if r["flow"] == "nightly-ingest"]
    assert nightly and nightly[-1]["status"] == "completed"  # the ops row of the scheduled run
    assert nightly[-1]["files_ingested"] > 0 and nightly[-1]["phi_gate"] == nightly[-1]["validation"] == "passed"
    port = stack["RADPIPE_STACK_PG_PORT"]
    query = (
        "select count(*) from runs r join tags t on t.run_uuid = r.run_uuid "
        f"where t.key = 'prefect_flow_run_id' and t.value = '{nightly[-1]['run_id']}'"
    )
    found = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "mlflow", "-tAc", query],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.stdout.strip() == "1"  # the scheduled run's metrics are in MLflow, in PostgreSQL
