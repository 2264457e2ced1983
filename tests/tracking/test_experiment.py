"""An experiment another run created meanwhile (or a retried request already made) is used, not an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Experiment
from mlflow.exceptions import MlflowException

from radpipe.tracking import experiment_id


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.chdir(tmp_path)  # default artifact locations land here
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_a_new_name_is_created_once_and_found_after(client: MlflowClient) -> None:
    created = experiment_id(client, "radpipe-new")
    assert experiment_id(client, "radpipe-new") == created
    assert [e.name for e in client.search_experiments() if e.name == "radpipe-new"] == ["radpipe-new"]


def test_an_experiment_created_between_lookup_and_creation_is_used(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = client.create_experiment("radpipe-race")  # what the other run (or the first request) made
    lookups: list[str] = []
    real = MlflowClient.get_experiment_by_name

    def misses_first(self: MlflowClient, name: str) -> Experiment | None:
        lookups.append(name)
        return None if len(lookups) == 1 else real(self, name)  # the lookup came before the other creation

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", misses_first)
    assert experiment_id(client, "radpipe-race") == existing
    assert lookups == ["radpipe-race", "radpipe-race"]


def test_other_refusals_still_raise(client: MlflowClient) -> None:
    with pytest.raises(MlflowException):
        experiment_id(client, "")  # an invalid name is the server's refusal, not a race
