"""Shared fixtures: a test key and home, a small synthetic archive, and a helper to build bad files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Settings are read once per process; set them before anything imports radpipe.settings.
_HOME = tempfile.mkdtemp(prefix="radpipe-test-home-")
os.environ["RADPIPE_HOME"] = _HOME
os.environ["RADPIPE_DEID_KEY"] = "test-key-0123456789abcdef-not-for-production"
os.environ.setdefault("RADPIPE_DASK_WORKERS", "2")
# Tests use the embedded defaults (MLflow on SQLite under the test home, a local Ray), never a real server.
for _variable in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "PREFECT_API_URL", "RADPIPE_RAY_STORAGE"):
    os.environ.pop(_variable, None)

from radpipe.deid import Deidentifier, Pseudonymizer  # noqa: E402
from radpipe.settings import get_settings  # noqa: E402
from radpipe.synth import write_archive  # noqa: E402

TEST_KEY = os.environ["RADPIPE_DEID_KEY"].encode()


@pytest.fixture(scope="session")
def deid() -> Deidentifier:
    return Deidentifier(Pseudonymizer(TEST_KEY))


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic archive with planted PHI (read-only: copy it before changing files)."""
    out = tmp_path_factory.mktemp("archive")
    write_archive(out, studies=16, seed=3, phi=True)
    return out


@pytest.fixture(scope="session")
def trainable(tmp_path_factory: pytest.TempPathFactory, deid: Deidentifier) -> tuple[Path, Path]:
    """(archive, dataset): 48 studies ingested, gated, curated and validated; enough for small training runs."""
    from radpipe.commands import curate_dataset, phi_gate, validate
    from radpipe.engine import SerialEngine
    from radpipe.ingest.run import ingest
    from radpipe.preprocess import get_profile

    root = tmp_path_factory.mktemp("trainable")
    write_archive(root / "archive", studies=48, seed=21, phi=True)
    dataset = root / "dataset"
    ingest(
        str(root / "archive" / "dicom"),
        str(root / "archive" / "reports"),
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    phi_gate(str(dataset))
    curate_dataset(str(dataset))
    assert validate(str(dataset)).passed
    return root / "archive", dataset


# Fixtures that ingest, gate, curate and validate a dataset, or start services: a test using one is in the
# integration tier whatever its own marks say, so `make test-fast` (the unmarked tier) never builds them.
_HEAVY_FIXTURES = frozenset({"trainable", "local_ray", "s3_server", "s3_env"})


# Tests that start a Ray instance (training, the chain, the local stack's cluster). Under pytest-xdist
# (`make test TEST_WORKERS=N`, --dist loadgroup) they share one worker, one after another, while the others
# take the rest: two Ray instances training at once would only slow each other.
_RAY_PATHS = (
    "tests/train/",
    "tests/flows/test_train_flow.py",
    "tests/flows/test_pipeline_flow.py",
    "tests/infra/test_stack.py",
    "tests/test_embeddings.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        if _HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.slow)
        if Path(str(item.path)).relative_to(root).as_posix().startswith(_RAY_PATHS) or "local_ray" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.xdist_group("ray"))
