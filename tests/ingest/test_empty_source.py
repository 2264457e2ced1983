"""A source given as "" (a form field or a deployment parameter left empty) is no source, never the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.ingest.ledger import Ledger, pending
from radpipe.ingest.summary import IngestSummary


@pytest.mark.parametrize("source", ["", None])
def test_no_source_lists_nothing_even_with_files_in_the_current_folder(
    source: str | None, deid: Deidentifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scan.dcm").write_bytes(b"\0" * 132 + b"DICM")
    monkeypatch.chdir(tmp_path)
    summary = IngestSummary()
    files, unlisted = pending(
        source, "dicom", deid, Ledger.load(DatasetStore(str(tmp_path / "dataset"))), summary, set(), {}
    )
    assert (files, unlisted, summary.files_seen) == ([], [], 0)
