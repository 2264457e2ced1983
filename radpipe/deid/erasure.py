"""Erase one patient's records from every table, on request (withdrawal of consent).

The key holder names the patient by the source ID; radpipe finds the pseudonym, removes every row of
that patient (instances, images, reports, studies, quarantine) in one commit per table, deletes every file
of any retained table version that held those rows (such an older version then refuses to be read), and records
the erasure so later ingests hold the patient's files back instead of bringing them back.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field

from radpipe.dataset.commit import commit_moves
from radpipe.dataset.rewrite import history_files, stage_removals
from radpipe.dataset.store import DatasetStore, StagedTableWriter
from radpipe.deid.pseudonym import IdentifierKind, Pseudonymizer

ERASURES_TABLE = "_erasures"


@dataclass
class ErasureSummary:
    rows_removed: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return any(self.rows_removed.values())


def read_erased_keys(store: DatasetStore) -> frozenset[str]:
    """Every pseudonym (patient, accession, study) erased from this dataset so far."""
    if not store.table_files(ERASURES_TABLE):
        return frozenset()
    keys = store.read_table(ERASURES_TABLE, ["keys"]).column("keys").to_pylist()
    return frozenset(key for row in keys for key in (row or ()))


def _column(store: DatasetStore, table: str, columns: list[str]) -> list[dict[str, str | None]]:
    return store.read_table(table, columns).to_pylist() if store.table_files(table) else []


def erase_patient(store: DatasetStore, pseudonymizer: Pseudonymizer, source_patient_id: str) -> ErasureSummary:
    """Remove one patient's rows from every table atomically; call under the dataset lock."""
    patient = pseudonymizer.pseudonym(IdentifierKind.PATIENT_ID, source_patient_id)
    instances = [
        row
        for row in _column(
            store,
            "instances",
            ["sop_instance_uid", "study_instance_uid", "accession_number", "patient_id", "source_key"],
        )
        if row["patient_id"] == patient
    ]
    sops = {str(r["sop_instance_uid"]) for r in instances}
    studies = {str(r["study_instance_uid"]) for r in instances}
    accessions = {str(r["accession_number"]) for r in instances if r["accession_number"]}
    sources = {str(r["source_key"]) for r in instances}
    reports = {
        str(r["report_id"])
        for r in _column(store, "reports", ["report_id", "patient_id", "accession_number", "study_instance_uid"])
        if r["patient_id"] == patient or r["accession_number"] in accessions or r["study_instance_uid"] in studies
    }
    plan = {
        "instances": ("sop_instance_uid", sops),
        "images": ("sop_instance_uid", sops),
        "reports": ("report_id", reports),
        "studies": ("study_instance_uid", studies),
        "quarantine": ("source_key", sources),
        "curation": ("sop_instance_uid", sops),
        "embeddings": ("sop_instance_uid", sops),
        "slices": ("sop_instance_uid", sops),
        "volumes": ("study_instance_uid", studies),
    }
    batch_id = "erase-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    moves, removed = stage_removals(store, plan, batch_id)
    summary = ErasureSummary(removed)
    record = StagedTableWriter(store, batch_id, ERASURES_TABLE)
    record.add(
        {
            "erasure_id": batch_id,
            "erased_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "keys": sorted({patient, *accessions, *studies}),
            "rows_removed": json.dumps(summary.rows_removed),
        },
        batch_id,
    )
    staged_record = record.close()
    assert staged_record is not None
    moves.append((staged_record, f"{ERASURES_TABLE}/part-{batch_id}.parquet"))
    # The files that held the rows go at once, not at vacuum; so do the older versions' files that hold them.
    history = history_files(store, plan, anywhere=("patient_id", {patient}))
    commit_moves(store, batch_id, moves, purge=True, purge_also=history)
    return summary
