"""Data Docs open in a real headless Chromium and list every suite's validation results."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from radpipe.quality.validate import validate_dataset

pytestmark = [pytest.mark.integration]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_data_docs_render_in_a_browser(fresh_dataset: Path, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: run `make browser` or set CHROMIUM"
    report = validate_dataset(str(fresh_dataset))
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            Path(report.data_docs).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "Data Docs" in dom
    for suite in ("instances", "images", "reports", "studies", "dataset"):
        assert f"radpipe-{suite}" in dom, suite
