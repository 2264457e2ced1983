"""An auditor's check: synth --phi, then ingest from the command line; no planted identifier anywhere.

Every file under the dataset and under RADPIPE_HOME (except the key) is read, Parquet decoded, and
every line the commands printed is read too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.tables import read_delta

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _file_text(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    return path.read_bytes().decode("utf-8", errors="replace")


def test_no_planted_identifier_in_dataset_home_or_output(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "RADPIPE_DEID_KEY"}
    env.update({"RADPIPE_HOME": str(home), "RADPIPE_DASK_WORKERS": "2"})
    archive, dataset = tmp_path / "archive", tmp_path / "dataset"
    _run("synth", str(archive), "--studies", "30", "--seed", "13", "--phi", env=env)
    command = (
        "ingest",
        "--dicom",
        str(archive / "dicom"),
        "--reports",
        str(archive / "reports"),
        "--out",
        str(dataset),
    )
    ingest = _run(*command, env=env)
    again = _run(*command, env=env)

    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    planted = {v for t in truth for v in [*t["phi"], *t["report_phi"]] if len(v) > 3}
    planted |= {t["patient_id"] for t in truth} | {t["accession_number"] for t in truth}
    planted |= {t["study_instance_uid"] for t in truth}
    planted |= {p.name for p in (archive / "dicom").iterdir()}  # folder names carry names and MRNs
    planted.add(str(archive))

    places = [p for p in [*dataset.rglob("*"), *home.rglob("*")] if p.is_file() and p.name != "deid.key"]
    assert any(p.suffix == ".parquet" for p in places)
    texts = {str(p): _file_text(p) for p in places}
    texts["ingest output"] = ingest.stdout + ingest.stderr
    texts["second ingest output"] = again.stdout + again.stderr
    leaks = {where: sum(value in text for value in planted) for where, text in texts.items()}
    assert not {where: n for where, n in leaks.items() if n}, "identifiers found (values not shown)"
    assert "PHI gate: passed" in ingest.stdout

    # ... while every report that has images still joins its study.
    studies = read_delta(dataset / "studies").to_pylist()
    linkable = sum(t["has_report"] and t["has_images"] for t in truth)
    assert sum(s["has_report"] for s in studies) == linkable
