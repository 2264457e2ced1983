"""infra/prefect.yaml names real flows, with parameters they take, schedules and concurrency limits."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule

ROOT = Path(__file__).parents[2]
SPEC = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}


def _flow(entrypoint: str) -> Flow:
    path, function = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    found = getattr(module, function)
    assert isinstance(found, Flow), f"{entrypoint} is not a Prefect flow"
    return found


def test_the_scheduled_deployments_exist() -> None:
    assert {"nightly-ingest", "weekly-train"} <= set(DEPLOYMENTS)
    assert DEPLOYMENTS["nightly-ingest"]["schedules"][0]["cron"] == "0 2 * * *"
    assert DEPLOYMENTS["weekly-train"]["schedules"][0]["cron"] == "0 3 * * 0"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_a_deployment_runs_a_flow_with_parameters_it_takes(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    signature = inspect.signature(_flow(deployment["entrypoint"]).fn)
    given = set(deployment.get("parameters", {}))
    assert given <= set(signature.parameters), f"{name}: unknown parameters {given - set(signature.parameters)}"
    required = {p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty}
    assert required <= given, f"{name}: required parameters missing {required - given}"
    for schedule in deployment.get("schedules", []):
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # a bad cron raises
    assert deployment["concurrency_limit"] == 1  # runs into one dataset or registry never overlap
    assert deployment["work_pool"]["name"] == "radpipe"
    config = deployment.get("parameters", {}).get("config")
    assert config is None or (ROOT / config).exists(), f"{name}: config {config} does not exist"
