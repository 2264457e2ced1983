"""A dataset written before tables were Delta tables opens with every row, and a rerun still adds nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from radpipe.commands import open_dataset
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.synth import write_archive
from tests.ingesting import serial_ingest


def test_a_format_1_dataset_becomes_delta_tables_with_the_same_rows(tmp_path: Path, deid: Deidentifier) -> None:
    write_archive(tmp_path / "archive", studies=3, seed=8)
    dataset = tmp_path / "dataset"
    serial_ingest(tmp_path / "archive", dataset, deid)
    tables = ("instances", "images", "reports", "studies", "_ledger")
    before = {t: DatasetStore(str(dataset)).count_rows(t) for t in tables}
    # What radpipe wrote before Delta: the same Parquet files, no _delta_log/, format 1.
    for log in dataset.glob("*/_delta_log"):
        shutil.rmtree(log)
    meta = json.loads((dataset / "_meta.json").read_text())
    (dataset / "_meta.json").write_text(json.dumps({**meta, "format": 1}))
    assert DatasetStore(str(dataset)).count_rows("instances") == 0  # unreadable as Delta tables

    store = open_dataset(str(dataset))

    assert {t: store.count_rows(t) for t in tables} == before
    assert json.loads((dataset / "_meta.json").read_text())["format"] == 2
    again = serial_ingest(tmp_path / "archive", dataset, deid)
    assert again.files_in == 0 and again.instances_added == 0 and again.reports_added == 0
