"""Ingest real DICOM written by scanners radpipe's authors never saw (other projects' public test corpora)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest

from radpipe.commands import deidentifier, ingest_sources, phi_gate
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from radpipe.deid.gate import PhiGateFailed
from tests.corpora import CORPORA, corpus_path
from tests.tables import commit_files, read_delta

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("name", [c.name for c in CORPORA])
def test_a_real_corpus_ingests_with_the_gate_passed_and_every_file_accounted_for(name: str, tmp_path: Path) -> None:
    source = corpus_path(name)
    files = sum(1 for p in source.rglob("*") if p.is_file())
    dataset = str(tmp_path / "dataset")
    summary = ingest_sources(str(source), None, dataset, "cxr-224")  # raises PhiGateFailed on any hit
    assert summary.files_in == files == summary.instances_added + summary.quarantined_files
    assert summary.instances_added > 0
    assert phi_gate(dataset).records == 0  # nothing withheld
    again = ingest_sources(str(source), None, dataset, "cxr-224")
    assert again.files_in == 0 and again.files_skipped == files


def test_identifiers_planted_in_a_real_file_are_still_caught(tmp_path: Path) -> None:
    """Precision must not cost recall: a real file's identifiers, leaked into a table, stop the gate."""
    source = tmp_path / "source"
    source.mkdir()
    ds = pydicom.dcmread(corpus_path("pydicom-data") / "RG1_UNCR.dcm")
    ds.PatientName = "Quinterro^Marisol"
    ds.save_as(source / "planted.dcm")
    dataset = str(tmp_path / "dataset")
    ingest_sources(str(source), None, dataset, "cxr-224")
    store = DatasetStore(dataset)
    leaks = {
        "reports": {"report_id": "x", "text": "Compared with the study of Mrs Quinterro."},  # one name part
        "quarantine": {"source_key": "x", "stage": "header", "reason": "x", "detail": "Marisol Quinterro"},
    }
    for table, row in leaks.items():
        store.fs.makedirs(store.path(table), exist_ok=True)
        pq.write_table(pa.Table.from_pylist([row], schema=TABLES[table]), store.path(table, "part-planted.parquet"))
        commit_files(store.path(table), "part-planted.parquet")
    with pytest.raises(PhiGateFailed) as failure:
        phi_gate(dataset)
    message = str(failure.value)
    assert "reports.text (1 rows: person name)" in message and "quarantine.detail (1 rows: person name)" in message
    assert "instances." not in message  # the real file's own values (Philips as institution and maker) are fine
    assert "Quinterro" not in message


def test_padchest_reports_ingest_labelled_in_spanish_with_their_dates_scrubbed(tmp_path: Path) -> None:
    """3,000 real (stemmed) Spanish reports: Spanish labels, not a silent 'normal'; dd mm yyyy dates removed."""
    import itertools
    import json
    import re

    from radpipe.reports.padchest import physician_reports
    from tests.corpora import padchest_csv

    sample = list(itertools.islice(physician_reports(padchest_csv()), 3000))
    source = tmp_path / "padchest.jsonl"
    source.write_text("".join(json.dumps({"accession_number": r.report_id, "text": r.text}) + "\n" for r in sample))
    dataset = str(tmp_path / "dataset")
    summary = ingest_sources(None, str(source), dataset, "cxr-224")
    assert summary.reports_added + sum(summary.reports_quarantined.values()) == len(sample)
    assert summary.reports_added > 0.95 * len(sample)  # the rest are empty lines, quarantined as missing_text
    unlabelled = sum(summary.reports_unlabelled_language.values())
    assert unlabelled / summary.reports_added < 0.15  # short lines such as " . ." stay unlabelled, counted
    rows = read_delta(tmp_path / "dataset" / "reports", columns=["accession_number", "text", "labels"]).to_pylist()
    assert not any(re.search(r"\b\d{1,2} \d{1,2} (?:19|20)\d{2}\b", row["text"]) for row in rows)
    assert not any(re.search(r"\b\d{1,2} (?:marz|diciembr|ener|octubr)\b", row["text"]) for row in rows)
    pseudonym = deidentifier().pseudonymizer.pseudonym
    pneumonia = {pseudonym("accession_number", r.report_id) for r in sample if "pneumonia" in r.labels}
    called_normal = {row["accession_number"] for row in rows if row["labels"]["no_finding"] == 1}
    assert len(pneumonia) > 20 and len(pneumonia & called_normal) <= 0.1 * len(pneumonia)  # was 225 of 231
    assert phi_gate(dataset).records == 0


def test_a_4d_enhanced_mr_is_assembled_from_its_first_time_point(tmp_path: Path, deid) -> None:
    """nibabel's 4D multi-frame MR (56 slices x 2 time points) was held back as duplicate_position."""
    from radpipe.engine import SerialEngine
    from radpipe.ingest.run import ingest
    from radpipe.preprocess import get_profile
    from radpipe.settings import get_settings

    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(corpus_path("nibabel") / "4d_multiframe_test.dcm", source)
    dataset = tmp_path / "dataset"
    ingest(str(source), None, str(dataset), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home)
    [volume] = read_delta(dataset / "volumes").to_pylist()
    assert volume["issues"] == [] and volume["n_slices"] == 112 and volume["time_points"] == 2
    assert volume["pixels"] is not None and len(volume["affine"]) == 16


def test_a_diffusion_enhanced_mr_is_assembled_from_one_b_value(tmp_path: Path, deid) -> None:
    """nibabel's real 4D object with its second dimension declared as a diffusion b-value (as a DWI writes it):
    two frames at every position, assembled from the first b-value, the sub-volume count kept."""
    import pydicom

    from radpipe.engine import SerialEngine
    from radpipe.ingest.run import ingest
    from radpipe.preprocess import get_profile
    from radpipe.settings import get_settings

    source = tmp_path / "source"
    source.mkdir()
    ds = pydicom.dcmread(corpus_path("nibabel") / "4d_multiframe_test.dcm")
    [temporal] = [d for d in ds.DimensionIndexSequence if d.DimensionIndexPointer == 0x00209128]
    temporal.DimensionIndexPointer = 0x00189087  # DiffusionBValue
    ds.save_as(source / "dwi.dcm")
    dataset = tmp_path / "dataset"
    ingest(str(source), None, str(dataset), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home)
    stacks = set(read_delta(dataset / "slices", columns=["stack"])["stack"].to_pylist())
    [volume] = read_delta(dataset / "volumes").to_pylist()
    assert stacks == {"1/DiffusionBValue=1", "1/DiffusionBValue=2"}
    assert volume["issues"] == [] and volume["n_slices"] == 112
    assert (volume["stacks"], volume["time_points"]) == (2, 1)


def test_open_i_report_files_ingest_in_shared_batches_with_nothing_withheld(tmp_path: Path) -> None:
    """Open-i: 3,955 one-report XML files (real English reports, identifiers already XXXX) through the CLI's
    path. They were one task and one Parquet file each; a code such as "cxr,786.2" was once taken for the
    accession number CXR786 of another report and withheld."""
    import tarfile

    from tests.corpora import openi_reports

    source = tmp_path / "openi"
    with tarfile.open(openi_reports()) as archive:
        archive.extractall(source, filter="data")
    files = sum(1 for p in source.rglob("*.xml"))
    dataset = str(tmp_path / "dataset")
    summary = ingest_sources(None, str(source), dataset, "cxr-224")
    assert files == 3955 and summary.report_files_in == files
    assert summary.reports_added == 3927 and summary.reports_quarantined["missing_text"] == 28
    assert not summary.withheld  # the gate withheld nothing: no identifier reached a table
    assert len(list((tmp_path / "dataset" / "reports").glob("*.parquet"))) <= 32  # a few shared batches
    assert ingest_sources(None, str(source), dataset, "cxr-224").report_files_in == 0  # nothing to read again
