from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from radpipe.commands import curate_dataset, phi_gate
from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings


@pytest.fixture(scope="session")
def curated(archive: Path, deid: Deidentifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ingested and curated dataset (read-only: copy it with `fresh_dataset` to damage it)."""
    dataset = tmp_path_factory.mktemp("curated") / "dataset"
    ingest(
        str(archive / "dicom"),
        str(archive / "reports"),
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    phi_gate(str(dataset))
    curate_dataset(str(dataset))
    return dataset


@pytest.fixture()
def fresh_dataset(curated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "dataset"
    shutil.copytree(curated, copy, ignore=shutil.ignore_patterns("_quality"))
    return copy
