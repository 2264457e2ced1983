"""The MLflow model registry: versions, aliases (@champion), their tags, and the views the dashboard reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from radpipe.tracking.errors import TrackingError, tracking_errors


@dataclass(frozen=True)
class ModelRef:
    """A model URI resolved against the registry: which version it names right now."""

    uri: str  # as the user gave it (models:/name@champion, models:/name/3, runs:/...)
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    model_id: str | None = None  # MLflow 3's logged model: metrics logged against it show on the version
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def pinned(self) -> str:
        """The exact version's URI (an alias moves; this does not)."""
        return f"models:/{self.name}/{self.version}" if self.name and self.version else self.uri


def resolve_model(uri: str) -> ModelRef:
    """models:/<name>/<version> or models:/<name>@<alias> to its registry version; other URIs as they are."""
    if not uri.startswith("models:/"):
        return ModelRef(uri)
    target = uri.removeprefix("models:/").strip("/")
    client = MlflowClient()
    with tracking_errors(f"find the model {uri}"):
        if "@" in target:
            name, alias = target.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        elif "/" in target:
            name, version = target.rsplit("/", 1)
            found = client.get_model_version(name, version)
        else:
            raise TrackingError(f"give a version or an alias: models:/{target}/<version> or models:/{target}@champion")
    # A version registered at log time has no model_id of its own; its source names the logged model.
    source = found.source or ""
    model_id = found.model_id or (source.removeprefix("models:/") if source.startswith("models:/m-") else None)
    return ModelRef(uri, found.name, str(found.version), found.run_id, model_id, dict(found.tags))


def load_python_model(uri: str) -> Any:
    """The PythonModel behind a pyfunc URI, loaded (its load_context run), for in-process use."""
    with tracking_errors(f"load the model {uri}"):
        return mlflow.pyfunc.load_model(uri).unwrap_python_model()


def set_version_tags(name: str, version: str, tags: Mapping[str, str]) -> None:
    client = MlflowClient()
    with tracking_errors(f"tag {name} version {version}"):
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)


def alias_holder(name: str, alias: str) -> ModelRef | None:
    """The version an alias points at, or None when the alias (or the model) does not exist yet.

    Only "not found" means none: any other registry error (a locked database, a lost connection) is raised,
    since reading it as "no champion" would hand the alias to a model that was never compared.
    """
    try:
        MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        missing = exc.error_code == "RESOURCE_DOES_NOT_EXIST" or (
            exc.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc.message)
        )
        if missing:
            return None
        with tracking_errors(f"read @{alias} of {name}"):
            raise
    return resolve_model(f"models:/{name}@{alias}")


def set_alias(name: str, alias: str, version: str) -> None:
    with tracking_errors(f"set @{alias} on {name} version {version}"):
        MlflowClient().set_registered_model_alias(name, alias, version)


# Read-only views for the ops dashboard (radpipe/ops/dashboard.py).


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version as the dashboard shows it."""

    name: str
    version: str
    created_ms: int  # registration time, ms since the epoch
    run_id: str | None
    aliases: tuple[str, ...]  # aliases pointing at it now (champion, ...)
    tags: dict[str, str]  # incl. promotion.<alias>.* written by radpipe.evaluate.promotion


def registered_models() -> list[str]:
    """Names of every registered model."""
    client = MlflowClient()
    names: list[str] = []
    token = None
    with tracking_errors("list the registered models"):
        while True:
            page = client.search_registered_models(max_results=100, page_token=token)
            names += [m.name for m in page]
            token = page.token
            if not token:
                return sorted(names)


def registry_versions(name: str) -> list[VersionInfo]:
    """Every version of a registered model, oldest first, with its tags and current aliases."""
    client = MlflowClient()
    with tracking_errors(f"read the versions of {name}"):
        holders: dict[str, list[str]] = {}
        for alias, version in client.get_registered_model(name).aliases.items():
            holders.setdefault(str(version), []).append(alias)
        found = client.search_model_versions(f"name = '{name}'")
    versions = [
        VersionInfo(
            name,
            str(v.version),
            int(v.creation_timestamp or 0),
            v.run_id,
            tuple(sorted(holders.get(str(v.version), []))),
            dict(v.tags or {}),
        )
        for v in found
    ]
    return sorted(versions, key=lambda v: int(v.version))
