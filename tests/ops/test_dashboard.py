"""The ops dashboard: a self-contained page whose plots render in a real headless Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radpipe import tracking
from radpipe.cli import main
from radpipe.errors import SourceError
from radpipe.ops import OpsRow, append_ops_row
from radpipe.ops.dashboard import render_dashboard, tracking_uri_for
from radpipe.settings import get_settings

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECTIONS = (
    "Ingest volume",
    "Quarantine reasons",
    "Validation pass rate",
    "Training curves",
    "Registry versions and champion history",
    "Last runs",
)
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def _chromium(page: Path, profile: Path, *mode: str) -> str:
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: run `make browser` or set CHROMIUM"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *mode,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


@pytest.fixture(scope="module")
def pretraining_run() -> tuple[str, str]:
    """(mlflow run id, registered model name): a run with loss curves and three versions, two promoted."""
    settings = get_settings()
    uri = tracking.configure(settings)
    run_id = tracking.start_run("radpipe-ops-tests", "curves", {}, {"git_commit": "test"})
    logger = tracking.MetricLogger(uri, run_id, system_metrics=False)
    for step in range(1, 9):
        logger.log({"train_loss": 3.0 / step, **({"val_loss": 3.2 / step} if step % 2 == 0 else {})}, step)
    logger.close()
    name = f"radpipe-ops-{uuid.uuid4().hex[:6]}"
    from mlflow import MlflowClient  # tests may build registry state directly; radpipe reads it via tracking

    client = MlflowClient()
    client.create_registered_model(name)
    for version, decision in (("1", "promoted"), ("2", "not promoted"), ("3", "promoted")):
        client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
        tracking.set_version_tags(
            name,
            version,
            {
                "promotion.champion.decision": decision,
                "promotion.champion.metric": "zeroshot_auroc_macro",
                "promotion.champion.candidate_value": f"0.{60 + int(version)}",
                "promotion.champion.champion_version": "none" if version == "1" else "1",
                "promotion.champion.champion_value": "none" if version == "1" else "0.610000",
                "promotion.champion.decided_at": f"2025-03-0{version}T03:00:00Z",
            },
        )
    tracking.set_alias(name, "champion", "3")
    return run_id, name


def _ops_home(home: Path, mlflow_run: str, name: str) -> Path:
    rows = [
        OpsRow(
            "ingest",
            "p1",
            T0,
            40.0,
            "completed",
            files_seen=20,
            files_ingested=18,
            files_quarantined=2,
            quarantine_reasons={"unreadable": 1, "duplicate": 1},
            phi_gate="passed",
            dataset="/data/ds",
        ),
        OpsRow(
            "ingest",
            "p2",
            T0 + timedelta(days=1),
            12.0,
            "completed",
            files_seen=7,
            files_ingested=4,
            files_quarantined=3,
            quarantine_reasons={"unreadable": 2, "report:no_text": 1},
            phi_gate="passed",
        ),
        OpsRow("ingest", "p3", T0 + timedelta(days=2), 1.0, "failed", error="PhiGateFailed", phi_gate="failed"),
        OpsRow(
            "curate-validate",
            "p4",
            T0 + timedelta(days=1, hours=1),
            9.0,
            "completed",
            validation="passed",
            dataset_version="v1",
        ),
        OpsRow(
            "curate-validate",
            "p5",
            T0 + timedelta(days=2, hours=1),
            9.0,
            "failed",
            error="ValidationFailed",
            validation="failed",
        ),
        OpsRow(
            "train",
            "p6",
            T0 + timedelta(days=1, hours=2),
            300.0,
            "completed",
            mlflow_run_id=mlflow_run,
            metrics={"train_loss": 0.375},
            model_versions=[f"models:/{name}/3"],
        ),
        OpsRow(
            "evaluate-promote",
            "p7",
            T0 + timedelta(days=1, hours=3),
            60.0,
            "completed",
            model_versions=[f"models:/{name}/3"],
            champion=f"models:/{name}/3",
        ),
    ]
    for row in rows:
        append_ops_row(home, row)
    return home


@pytest.mark.integration
def test_the_page_renders_every_plot_in_a_browser(pretraining_run: tuple[str, str], tmp_path: Path) -> None:
    run_id, name = pretraining_run
    home = _ops_home(tmp_path / "home", run_id, name)
    page = render_dashboard(home, tmp_path / "ops.html", get_settings().tracking_uri)
    source = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", source)  # self-contained: nothing from the network

    dom = _chromium(page, tmp_path / "profile", "--dump-dom")
    for title in SECTIONS:
        assert f">{title}</h2>" in dom, title
    images = re.findall(r'<img class="plot" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
    assert len(images) == 5, [alt for alt, _ in images]
    assert all(len(data) > 10_000 for _, data in images)  # real plots, not empty canvases
    assert "MLflow could not be read" not in dom and "Nothing yet" not in dom
    assert f"{name}" in dom and "@champion" in dom and "PhiGateFailed" in dom and "p7" in dom

    shot = tmp_path / "shot.png"
    _chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2400, 1200)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not a blank page


@pytest.mark.integration
def test_an_empty_home_renders_a_page_that_says_so(tmp_path: Path) -> None:
    page = render_dashboard(tmp_path, tmp_path / "ops.html", tracking_uri_for(tmp_path, None))
    dom = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert "Nothing yet" in dom and ">Last runs</h2>" in dom and "<img" not in dom
    assert not (tmp_path / "mlflow.db").exists()  # drawing a page creates no MLflow store


def test_bad_paths_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SourceError, match="no radpipe home"):
        render_dashboard(tmp_path / "missing", tmp_path / "ops.html")
    with pytest.raises(SourceError, match="is a folder"):
        render_dashboard(tmp_path, tmp_path)
    assert main(["dashboard", "--out", str(tmp_path / "no" / "ops.html"), "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_the_cli_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    append_ops_row(tmp_path, OpsRow("embed", "e1", T0, 2.0, "completed", model_versions=["models:/m/1"]))
    assert main(["dashboard", "--out", str(tmp_path / "ops.html"), "--home", str(tmp_path)]) == 0
    assert "ops dashboard:" in capsys.readouterr().out
    assert "models:/m/1" in (tmp_path / "ops.html").read_text()
