"""A command that finished its work exits 0, every time (no native thread dies at interpreter shutdown)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_summary_exits_0_in_30_runs_out_of_30(archive: Path, deid: Deidentifier, tmp_path: Path) -> None:
    # Before reads were kept off Arrow's thread pool, 4 of 30 runs aborted (exit 134) after printing everything.
    dataset = tmp_path / "dataset"
    profile = get_profile("cxr-224")
    ingest(
        str(archive / "dicom"),
        str(archive / "reports"),
        str(dataset),
        deid,
        profile,
        SerialEngine(),
        home=get_settings().home,
    )
    for run in range(30):
        result = subprocess.run(
            [sys.executable, "-m", "radpipe.cli", "summary", str(dataset)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"run {run + 1}: exit {result.returncode}: {result.stderr[-500:]}"
        assert "instances" in result.stdout
