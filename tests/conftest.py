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

from radpipe.deid import Deidentifier, Pseudonymizer  # noqa: E402
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
