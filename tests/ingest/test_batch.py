"""Batch-level behaviour without a cluster: vanished files, report duplicates, appended report lines."""

from pathlib import Path

import pyarrow.parquet as pq

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.batch import ingest_dicom_batch
from radpipe.ingest.run import ingest
from radpipe.ingest.sources import SourceFile
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from tests.tables import read_delta


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
    return ingest(
        None, str(source), str(dataset), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home
    )


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
    assert read_delta(tmp_path / "ds" / "reports").num_rows == 2


def _dicom_archive(tmp_path: Path) -> Path:
    from radpipe.synth import write_archive

    write_archive(tmp_path / "src", studies=3, seed=21)
    return tmp_path / "src" / "dicom"


def _ingest_dicom(source: Path, dataset: Path, deid: Deidentifier):
    return ingest(
        str(source), None, str(dataset), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home
    )


def test_touched_files_are_unchanged_not_duplicates(tmp_path: Path, deid: Deidentifier) -> None:
    import os

    source = _dicom_archive(tmp_path)
    first = _ingest_dicom(source, tmp_path / "ds", deid)
    for path in source.rglob("*.dcm"):
        os.utime(path, (1_700_000_000, 1_700_000_000))  # rsync without -t, a restore from backup
    again = _ingest_dicom(source, tmp_path / "ds", deid)
    assert again.instances_added == 0 and again.quarantined_files == 0
    assert again.files_skipped == first.instances_added and again.balanced
    assert not (tmp_path / "ds" / "quarantine").exists()


def test_links_are_followed_and_dangling_links_are_reported(tmp_path: Path, deid: Deidentifier) -> None:
    source = _dicom_archive(tmp_path)
    n_files = sum(1 for _ in source.rglob("*.dcm"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.dcm").write_bytes(next(source.rglob("*.dcm")).read_bytes())
    (source / "linked").symlink_to(elsewhere, target_is_directory=True)
    (source / "loop").symlink_to(source, target_is_directory=True)
    (source / "dangling.dcm").symlink_to(tmp_path / "nowhere.dcm")
    summary = _ingest_dicom(source, tmp_path / "ds", deid)
    assert summary.instances_added == n_files
    assert summary.quarantined == {"duplicate": 1, "unreadable": 1}  # the linked copy; the dangling link
    assert summary.balanced


def test_an_unreadable_file_is_tried_again_next_run(tmp_path: Path, deid: Deidentifier, monkeypatch) -> None:
    from radpipe.ingest import sources

    source = _dicom_archive(tmp_path)
    victim = sorted(source.rglob("*.dcm"))[0]
    real_read = sources.SourceFile.read

    def flaky(self):
        if self.url.endswith(str(victim)):
            raise ConnectionResetError("storage hiccup")
        return real_read(self)

    monkeypatch.setattr(sources.SourceFile, "read", flaky)
    first = _ingest_dicom(source, tmp_path / "ds", deid)
    assert first.quarantined == {"unreadable": 1}
    monkeypatch.setattr(sources.SourceFile, "read", real_read)
    second = _ingest_dicom(source, tmp_path / "ds", deid)
    assert second.files_in == 1 and second.instances_added == 1


def test_dataset_inside_a_source_is_refused(tmp_path: Path, deid: Deidentifier) -> None:
    import pytest

    from radpipe.errors import SourceError

    source = _dicom_archive(tmp_path)
    with pytest.raises(SourceError, match="must not be inside a source"):
        _ingest_dicom(source, source / "dataset", deid)


def test_staged_files_the_driver_cannot_see_stop_the_run(tmp_path: Path, deid: Deidentifier) -> None:
    """A remote Dask cluster writing to its own disks must not produce a ledger without rows."""
    import pytest

    from radpipe.dataset.commit import StagingNotVisible

    class ForgetfulEngine(SerialEngine):
        def map_unordered(self, fn, args, max_in_flight):
            import shutil

            for item in args:
                result = fn(*item)
                shutil.rmtree(tmp_path / "ds" / "_staging", ignore_errors=True)
                yield result

    source = _dicom_archive(tmp_path)
    with pytest.raises(StagingNotVisible, match="storage that the workers and this machine share"):
        ingest(
            str(source),
            None,
            str(tmp_path / "ds"),
            deid,
            get_profile("cxr-224"),
            ForgetfulEngine(),
            home=get_settings().home,
        )
    assert not (tmp_path / "ds" / "_ledger").exists()


def test_one_unprocessable_report_line_does_not_stop_the_file(tmp_path: Path, deid: Deidentifier) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "r.jsonl").write_text(
        '{"accession_number": "A1", "patient_id": "P1", "report_date": "0001-01-05", "text": "FINDINGS: ok."}\n'
        '{"accession_number": "A2", "text": "x \\ud83d"}\n' + LINE_B
    )
    summary = _ingest_reports(reports, tmp_path / "ds", deid)
    rows = read_delta(tmp_path / "ds" / "reports").to_pylist()
    assert summary.reports_added + sum(summary.reports_quarantined.values()) == 3
    assert any(row["text"] == "FINDINGS: No pleural effusion." for row in rows)
    assert all(row["report_date"] is None for row in rows)  # year 1 cannot be shifted; no patient: no date


def test_a_file_that_crashes_its_worker_is_isolated_and_the_rest_ingested(
    tmp_path: Path, deid: Deidentifier, monkeypatch
) -> None:
    """A codec segfault or an OOM kill takes the whole batch down; bisection finds the one file."""
    from radpipe.engine import WorkerCrashed
    from radpipe.ingest import batch as batch_module

    source = _dicom_archive(tmp_path)
    files = sorted(source.rglob("*.dcm"))
    victim = str(files[len(files) // 2])
    real = batch_module.process_dicom

    def crashing(raw, source_key, path, *args, **kwargs):
        if path == victim:
            raise WorkerCrashed("simulated segfault")
        return real(raw, source_key, path, *args, **kwargs)

    monkeypatch.setattr(batch_module, "process_dicom", crashing)
    from radpipe.ingest import run as run_module

    monkeypatch.setattr(run_module, "MIN_BATCHES_PER_WORKER", 1)  # one batch holding every file
    assert len(files) >= 3
    summary = _ingest_dicom(source, tmp_path / "ds", deid)
    assert summary.instances_added == len(files) - 1 and summary.quarantined == {"undecodable": 1}
    assert summary.balanced
    (row,) = read_delta(tmp_path / "ds" / "quarantine").to_pylist()
    assert row["source_key"] == deid.pseudonymizer.source_key("file://" + victim)
    assert "crashed the worker" in row["detail"]


def test_many_small_report_files_share_batches_and_one_unreadable_file_loses_only_itself(
    tmp_path: Path, deid: Deidentifier
) -> None:
    """One report per file (Open-i's layout) was one task and one Parquet file per report."""
    from radpipe.ingest.batch import ingest_report_files

    folder = tmp_path / "reports"
    folder.mkdir()
    lines = [f'{{"accession_number": "A{n}", "text": "FINDINGS: Finding number {n}."}}\n' for n in range(60)]
    for n, line in enumerate(lines):
        (folder / f"r{n:03d}.jsonl").write_text(line)
    (folder / "copy.jsonl").write_text(lines[0])  # the same report as r000, in another file
    summary = _ingest_reports(folder, tmp_path / "ds", deid)
    assert summary.report_files_in == 61 and summary.reports_added == 60
    assert summary.reports_quarantined["duplicate"] == 1
    report_files = list((tmp_path / "ds" / "reports").glob("*.parquet"))
    assert len(report_files) <= 8  # SerialEngine: one worker, 8 batches at most (MIN_BATCHES_PER_WORKER)
    assert read_delta(tmp_path / "ds" / "_ledger").num_rows == 61  # still one ledger row per file
    assert _ingest_reports(folder, tmp_path / "ds", deid).report_files_in == 0  # a rerun reads nothing

    good = SourceFile(url=f"file://{folder}/r001.jsonl", source_key="k-good", size=80, mtime="0")
    gone = SourceFile(url=f"file://{folder}/gone.jsonl", source_key="k-gone", size=80, mtime="0")
    later = SourceFile(url=f"file://{folder}/r002.jsonl", source_key="k-later", size=80, mtime="0")
    batch = ingest_report_files(str(tmp_path / "ds2"), "b1", [good, gone, later], deid)
    assert (batch.counts["reports"], batch.counts["report_quarantined:unreadable"]) == (2, 1)
    assert [row["outcome"] for row in batch.ledger] == ["reports:1", "quarantined:unreadable", "reports:1"]
    assert pq.read_table(batch.files["reports"]).num_rows == 2


def test_a_rerun_that_finds_nothing_new_keeps_studies_and_a_change_rebuilds_it(tmp_path: Path, deid) -> None:
    from radpipe.dataset.store import DatasetStore
    from radpipe.ingest.studies import rebuild_studies

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "a.jsonl").write_text(LINE_A)
    _ingest_reports(reports, tmp_path / "ds", deid)
    (studies,) = (tmp_path / "ds" / "studies").glob("*.parquet")
    written = studies.stat().st_mtime_ns
    again = rebuild_studies(DatasetStore(str(tmp_path / "ds")))
    assert studies.stat().st_mtime_ns == written and (again.reports, again.reports_orphaned) == (1, 1)  # kept
    (reports / "b.jsonl").write_text(LINE_B)
    _ingest_reports(reports, tmp_path / "ds", deid)
    assert rebuild_studies(DatasetStore(str(tmp_path / "ds"))).reports == 2  # new input: derived again


def test_a_copy_arriving_in_a_later_run_is_a_duplicate_found_by_the_worker(tmp_path: Path, deid: Deidentifier) -> None:
    from radpipe.dataset.store import DatasetStore
    from radpipe.ingest.known_keys import KnownKeys

    source = _dicom_archive(tmp_path)
    first = _ingest_dicom(source, tmp_path / "ds", deid)
    original = sorted(source.rglob("*.dcm"))[0]
    (source / "copy-of-one.dcm").write_bytes(original.read_bytes())

    store = DatasetStore(str(tmp_path / "ds"))
    lookup = KnownKeys(store, "instances", "sop_instance_uid").lookup
    copy = [f for f in pending_files(source, deid) if f.url.endswith("copy-of-one.dcm")]
    batch = ingest_dicom_batch(str(tmp_path / "ds"), "b-copy", copy, deid, get_profile("cxr-224"), existing=lookup)
    ((uid, _),) = batch.keys["instances"]
    held = read_delta(tmp_path / "ds" / "instances").to_pylist()
    assert batch.held["instances"] == {uid: next(r["source_key"] for r in held if r["sop_instance_uid"] == uid)}

    again = _ingest_dicom(source, tmp_path / "ds", deid)
    assert again.instances_added == 0 and again.quarantined == {"duplicate": 1} and again.balanced
    assert read_delta(tmp_path / "ds" / "instances").num_rows == first.instances_added


def pending_files(source: Path, deid: Deidentifier) -> list:
    from radpipe.ingest.sources import SourceFile

    return [
        SourceFile(str(p), deid.pseudonymizer.source_key(str(p)), p.stat().st_size, str(p.stat().st_mtime))
        for p in sorted(source.rglob("*.dcm"))
    ]
