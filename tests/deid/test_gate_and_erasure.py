"""The PHI gate finds a planted identifier (and never shows it); erasure removes one patient everywhere."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radpipe.commands import erase, phi_gate
from radpipe.dataset.guard import dataset_id
from radpipe.dataset.schema import REPORTS
from radpipe.dataset.store import DatasetStore
from radpipe.deid import Deidentifier
from radpipe.deid.gate import PhiGateFailed
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.settings import get_settings
from radpipe.synth import write_archive
from tests.tables import commit_files, read_delta


@pytest.fixture()
def phi_dataset(tmp_path: Path, deid: Deidentifier) -> tuple[Path, Path]:
    archive = tmp_path / "archive"
    write_archive(archive, studies=12, seed=31, phi=True)
    dataset = tmp_path / "dataset"
    ingest(
        str(archive / "dicom"),
        str(archive / "reports"),
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    return archive, dataset


def test_gate_passes_a_clean_dataset_and_stops_a_leaky_one(phi_dataset) -> None:
    archive, dataset = phi_dataset
    assert phi_gate(str(dataset)).records == 0
    assert json.loads((dataset / "_gate.json").read_text())["passed"] is True
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    family = truth[0]["phi"][1]  # a planted family name
    leaked = pa.Table.from_pylist(
        [{"report_id": "x", "text": f"Seen by the team; patient {family} stable."}], schema=REPORTS
    )
    pq.write_table(leaked, dataset / "reports" / "part-tampered.parquet")
    commit_files(dataset / "reports", "part-tampered.parquet")
    with pytest.raises(PhiGateFailed) as failure:
        phi_gate(str(dataset))
    assert "reports.text (1 rows: person name)" in str(failure.value)
    assert family not in str(failure.value)  # the gate names where, never what
    result = json.loads((dataset / "_gate.json").read_text())
    assert result["passed"] is False and family not in json.dumps(result)


def test_identifiers_are_kept_only_as_keyed_hashes_readable_by_the_operator(phi_dataset) -> None:
    archive, dataset = phi_dataset
    folder = get_settings().home / "phi-gate" / str(dataset_id(DatasetStore(str(dataset))))
    parts = list(folder.glob("*.parquet"))
    assert parts and all(os.stat(p).st_mode & 0o077 == 0 for p in parts)
    stored = " ".join(h for p in parts for h in pq.read_table(p).column("hash").to_pylist())
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    assert not any(value.lower() in stored.lower() for t in truth for value in t["phi"] if len(value) > 3)


def test_erasure_removes_one_patient_everywhere_and_keeps_them_out(phi_dataset, deid: Deidentifier) -> None:
    archive, dataset = phi_dataset
    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    target = next(t for t in truth if t["has_images"])["patient_id"]
    pseudonym = deid.pseudonymizer.pseudonym("patient_id", target)
    before = {t: read_delta(dataset / t).num_rows for t in ("instances", "images", "reports", "studies")}
    ours = sum(1 for r in read_delta(dataset / "instances").to_pylist() if r["patient_id"] == pseudonym)
    assert ours > 0

    summary = erase(str(dataset), target)

    assert summary.rows_removed["instances"] == summary.rows_removed["images"] == ours
    for table in ("instances", "reports", "studies"):
        rows = read_delta(dataset / table).to_pylist()
        assert not [r for r in rows if r["patient_id"] == pseudonym], table
    assert read_delta(dataset / "images").num_rows == before["images"] - ours
    assert read_delta(dataset / "reports").num_rows < before["reports"]
    assert read_delta(dataset / "_erasures").num_rows == 1

    # The patient's files arrive again (a re-export under new names): they are held back, not ingested.
    again = archive / "dicom" / "re-export"
    again.mkdir()
    for path in (archive / "dicom").rglob("*.dcm"):
        if target in str(path):
            shutil.copy(path, again / f"copy-{path.parent.name}-{path.name}")
    summary = ingest(
        str(archive / "dicom"),
        None,
        str(dataset),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=get_settings().home,
    )
    assert summary.instances_added == 0 and summary.quarantined == {"erased_patient": ours}


def test_clear_paths_of_quarantined_files_only_on_request_and_operator_only(tmp_path: Path, deid) -> None:
    archive = tmp_path / "archive"
    write_archive(archive, studies=2, seed=3)
    (archive / "dicom" / "notes for Jane Doe.txt").write_text("not an image")
    home = tmp_path / "home"
    ingest(str(archive / "dicom"), None, str(tmp_path / "a"), deid, get_profile("cxr-224"), SerialEngine(), home=home)
    assert not (home / "operator").exists()  # off by default: RADPIPE_HOME then holds no source path
    ingest(
        str(archive / "dicom"),
        None,
        str(tmp_path / "b"),
        deid,
        get_profile("cxr-224"),
        SerialEngine(),
        home=home,
        log_quarantined_paths=True,
    )
    (log,) = (home / "operator").glob("*.jsonl")
    assert os.stat(log).st_mode & 0o077 == 0 and os.stat(home / "operator").st_mode & 0o077 == 0
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["path"].endswith("notes for Jane Doe.txt") and entry["outcome"] == "quarantined:not_dicom"


def test_a_gate_reads_what_was_added_since_a_passing_gate_and_the_earlier_files_new_identifiers_can_be_in(
    phi_dataset, deid: Deidentifier
) -> None:
    from radpipe.dataset.guard import check_key
    from radpipe.deid.gate import scan, vouched_state
    from radpipe.deid.identifier_store import IdentifierStore
    from radpipe.deid.identifiers import PhiKind, gate_hashes

    archive, dataset = phi_dataset
    store = DatasetStore(str(dataset))
    identifiers = IdentifierStore(get_settings().home, check_key(store, deid.pseudonymizer.key))
    phi_gate(str(dataset))
    everything = scan(store, deid.pseudonymizer, identifiers)
    assert everything.rows_read > 0 and not everything.hits

    nothing_new = scan(store, deid.pseudonymizer, identifiers, vouched_state(store))
    assert nothing_new.rows_read == 0 and not nothing_new.hits  # a rerun that added nothing reads nothing

    truth = [json.loads(line) for line in open(archive / "truth.jsonl")]
    family = truth[0]["phi"][1]
    leaked = pa.Table.from_pylist([{"report_id": "x", "text": f"Patient {family} seen."}], schema=REPORTS)
    pq.write_table(leaked, dataset / "reports" / "part-late.parquet")
    commit_files(dataset / "reports", "part-late.parquet")
    added = scan(store, deid.pseudonymizer, identifiers, vouched_state(store))
    assert added.rows_read == 1 and [(h.table, h.column) for h in added.hits] == [("reports", "text")]

    # A new batch whose identifiers are in no earlier row: the earlier rows are not read again.
    identifiers.add_batch("unseen-batch", gate_hashes(deid.pseudonymizer.key, {"zqxjvw kopt": PhiKind.NAME}))
    identifiers.merge_batches({"unseen-batch"}, "unseen")
    assert scan(store, deid.pseudonymizer, identifiers, vouched_state(store)).rows_read == 1

    # A new batch's identifier may be in old rows (a patient called "Effusion", in reports that passed): the
    # files holding that word are read again, and find what reading every row finds.
    identifiers.add_batch("late-batch", gate_hashes(deid.pseudonymizer.key, {"effusion": PhiKind.NAME}))
    identifiers.merge_batches({"late-batch"}, "late")
    incremental = scan(store, deid.pseudonymizer, identifiers, vouched_state(store))
    full = scan(store, deid.pseudonymizer, identifiers)
    assert ("reports", "text", "person name") in {(h.table, h.column, h.kind) for h in incremental.hits}
    assert incremental.hits == full.hits and incremental.offending == full.offending
    assert 1 < incremental.rows_read < full.rows_read
