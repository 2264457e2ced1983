"""A large JSONL report file is read by several tasks, one line-aligned byte range each."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest import report_parts
from radpipe.ingest.report_parts import line_ranges
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from tests.tables import read_delta


def _report_folder(tmp_path: Path) -> tuple[Path, list[str]]:
    source = tmp_path / "reports"
    source.mkdir()
    rows = [json.dumps({"accession_number": f"A{n}", "text": f"FINDINGS: Nodule number {n}."}) for n in range(300)]
    return source, rows


def _ingest_reports(source: Path, dataset: Path, deid: Deidentifier):
    return ingest(
        None, str(source), str(dataset), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home
    )


@pytest.mark.parametrize("seed", range(5))
def test_ranges_cut_after_newlines_cover_the_file_and_number_its_lines(seed: int) -> None:
    rng = random.Random(seed)
    lines = [("x" * rng.randint(0, 300)) + "\n" for _ in range(rng.randint(1, 400))]
    if rng.random() < 0.5:
        lines[-1] = lines[-1].rstrip("\n")  # no newline at the very end
    data = "".join(lines).encode()
    step = rng.randint(1, 5000)
    ranges = line_ranges(io.BytesIO(data), len(data), step)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (_, end, _), (start, _, _) in zip(ranges, ranges[1:], strict=False):
        assert end == start and data[start - 1 : start] == b"\n"  # contiguous, each part starts a line
    for start, _, first_line in ranges:
        assert first_line == data[:start].count(b"\n") + 1


def test_a_large_jsonl_ingests_in_parts_with_whole_file_line_numbers(
    tmp_path: Path, deid: Deidentifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_parts, "SPLIT_ABOVE_BYTES", 4096)  # a 12 KB file is cut into parts
    monkeypatch.setattr(report_parts, "MIN_PART_BYTES", 2048)
    source, rows = _report_folder(tmp_path)
    rows[250] = "{not json"  # line 251 of the file: its quarantine record must say so
    (source / "big.jsonl").write_text("\n".join(rows) + "\n")

    def run():
        return _ingest_reports(source, tmp_path / "ds", deid)

    summary = run()
    assert summary.reports_added == 299 and summary.reports_quarantined["parse_error"] == 1
    assert len(list((tmp_path / "ds" / "reports").glob("*.parquet"))) > 2  # read in several parts
    ledger = read_delta(tmp_path / "ds" / "_ledger").to_pylist()
    (whole,) = [row for row in ledger if row["kind"] == "report"]  # one row marks the file read: the last part's
    assert whole["records"] == 300 and len(ledger) > 2  # the others record their batches as parts
    assert sum(int(row["outcome"].split(":")[1]) for row in ledger) == 299
    (bad,) = read_delta(tmp_path / "ds" / "quarantine").to_pylist()
    assert bad["position"] == 251 and "line 251" in bad["detail"]
    again = run()
    assert again.report_files_in == 0 and again.reports_added == 0


def test_a_part_that_fails_keeps_the_file_unread_so_the_next_run_completes_it(
    tmp_path: Path, deid: Deidentifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last part's ledger row must not mark the file read when an earlier part of the same run failed."""
    from radpipe.ingest import batch

    monkeypatch.setattr(report_parts, "SPLIT_ABOVE_BYTES", 4096)  # a 12 KB file is cut into parts
    monkeypatch.setattr(report_parts, "MIN_PART_BYTES", 2048)
    source, rows = _report_folder(tmp_path)
    (source / "big.jsonl").write_text("\n".join(rows) + "\n")
    records = batch._records

    def second_part_fails(file):
        if file.part is not None and file.part.first_line > 1 and not file.part.final:
            raise OSError("read timed out")  # a transient store error, once per part after the first
        return records(file)

    def run():
        return _ingest_reports(source, tmp_path / "ds", deid)

    monkeypatch.setattr(batch, "_records", lambda file: iter(list(second_part_fails(file))))
    first = run()
    assert 0 < first.reports_added < 300 and first.reports_quarantined["unreadable"] >= 1
    monkeypatch.setattr(batch, "_records", records)  # the outage is over
    second = run()
    assert second.report_files_in == 1  # read again, not taken for done by the last part's row
    assert first.reports_added + second.reports_added == 300
    assert read_delta(tmp_path / "ds" / "reports").num_rows == 300  # whole, nothing doubled
    assert run().report_files_in == 0
