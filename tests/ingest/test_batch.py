"""Batch-level behaviour without a cluster: vanished files, report duplicates, appended report lines."""

from pathlib import Path

import pyarrow.parquet as pq

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.batch import ingest_dicom_batch
from radpipe.ingest.run import ingest
from radpipe.ingest.sources import SourceFile
from radpipe.preprocess import get_profile


def test_a_file_that_vanished_after_the_walk_is_quarantined_unreadable(tmp_path: Path, deid: Deidentifier) -> None:
    gone = SourceFile(url=f"file://{tmp_path}/gone.dcm", source_key="k1", size=10, mtime="0")
    batch = ingest_dicom_batch(str(tmp_path / "ds"), "b1", [gone], deid, get_profile("cxr-224"))
    assert batch.counts == {"quarantined:unreadable": 1}
    (row,) = pq.read_table(batch.files["quarantine"]).to_pylist()
    assert row["reason"] == "unreadable" and row["stage"] == "read"
    assert str(tmp_path) not in row["detail"]


LINE_A = '{"accession_number": "A1", "text": "FINDINGS: Cardiomegaly."}\n'
LINE_B = '{"accession_number": "A2", "text": "FINDINGS: No pleural effusion."}\n'


def _ingest_reports(source: Path, dataset: Path, deid: Deidentifier):
    return ingest(None, str(source), str(dataset), deid, get_profile("cxr-224"), SerialEngine())


def test_report_copies_are_duplicates_but_appended_files_only_add_new_lines(tmp_path: Path, deid) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "a.jsonl").write_text(LINE_A + LINE_A)  # the same report twice in one file
    first = _ingest_reports(reports, tmp_path / "ds", deid)
    assert first.reports_added == 1 and first.reports_quarantined["duplicate"] == 1

    (reports / "a.jsonl").write_text(LINE_A + LINE_A + LINE_B)  # a line appended
    second = _ingest_reports(reports, tmp_path / "ds", deid)
    assert second.reports_added == 1
    assert second.reports_unchanged == 1 and second.reports_quarantined["duplicate"] == 1

    (reports / "copy.jsonl").write_text(LINE_B)  # the same report arriving in another file
    third = _ingest_reports(reports, tmp_path / "ds", deid)
    assert third.reports_added == 0 and third.reports_quarantined["duplicate"] == 1
    assert pq.read_table(tmp_path / "ds" / "reports").num_rows == 2
