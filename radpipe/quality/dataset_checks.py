"""Dataset-wide metrics that no single batch can see: uniqueness, joins, splits, quarantine rate.

Computed from key columns only (a few strings per row), so memory grows with the number of rows'
keys, not with pixels; reported through the same Great Expectations results as the batch suites.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc

from radpipe.dataset.store import DatasetStore


def _duplicates(values: list[str | None]) -> int:
    counts = Counter(v for v in values if v is not None)
    return sum(n - 1 for n in counts.values() if n > 1)


def _column(store: DatasetStore, table: str, columns: list[str]) -> dict[str, list]:
    data = store.read_table(table, columns)
    return {c: data.column(c).to_pylist() for c in columns}


def dataset_metrics(store: DatasetStore) -> dict[str, float]:
    instances = _column(store, "instances", ["sop_instance_uid"])["sop_instance_uid"]
    images = _column(store, "images", ["sop_instance_uid"])["sop_instance_uid"]
    report_ids = _column(store, "reports", ["report_id"])["report_id"]
    studies = _column(store, "studies", ["study_instance_uid", "patient_id", "split", "is_synthetic"])
    # DICOM files quarantined, by the ledger (report lines are quarantined too, but are not files in).
    ledger = store.read_table("_ledger", ["kind", "outcome"]) if store.table_files("_ledger") else None
    dicom_quarantined = 0
    if ledger is not None:
        dicom = pc.equal(ledger.column("kind"), "dicom")
        quarantined = pc.starts_with(ledger.column("outcome"), "quarantined:")
        dicom_quarantined = int(pc.sum(pc.and_(dicom, quarantined)).as_py() or 0)
    known = set(instances)
    splits_of: dict[str, set[str]] = {}
    for patient, split in zip(studies["patient_id"], studies["split"], strict=True):
        if patient is not None and split is not None:
            splits_of.setdefault(patient, set()).add(split)
    real = any(not s for s in studies["is_synthetic"])
    synthetic_in_evaluation = sum(
        1
        for split, synthetic in zip(studies["split"], studies["is_synthetic"], strict=True)
        if real and synthetic and split in ("validation", "test")
    )
    total = len(instances) + dicom_quarantined
    return {
        "instances": len(instances),
        "duplicate_sop_instance_uids": _duplicates(instances),
        "duplicate_image_uids": _duplicates(images),
        "images_without_instance": sum(1 for uid in images if uid not in known),
        "duplicate_study_uids": _duplicates(studies["study_instance_uid"]),
        "duplicate_report_ids": _duplicates(report_ids),
        "patients_in_several_splits": sum(1 for splits in splits_of.values() if len(splits) > 1),
        "studies_without_split": sum(1 for split in studies["split"] if split is None),
        "synthetic_in_evaluation_splits": synthetic_in_evaluation,
        "quarantine_rate": dicom_quarantined / total if total else 0.0,
    }
