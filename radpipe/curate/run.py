"""`radpipe curate`: splits into studies/, duplicates and prune flags into curation/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from radpipe.curate.duplicates import near_duplicate_groups, perceptual_hash
from radpipe.curate.semantic import SemanticRule, semantic_duplicates
from radpipe.curate.splits import SPLITS, SplitFractions, assign_split
from radpipe.dataset.commit import replace_table
from radpipe.dataset.pixels import decode_row
from radpipe.dataset.schema import CURATION, STUDIES
from radpipe.dataset.store import DatasetStore
from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.errors import ConfigError, SourceError

# Near duplicates: pHash Hamming distance at most this (of 256 bits); see curate/duplicates.py.
DEFAULT_NEAR_THRESHOLD = 8


@dataclass
class CurationSummary:
    patients_per_split: dict[str, int] = field(default_factory=dict)
    studies_per_split: dict[str, int] = field(default_factory=dict)
    patients_in_several_splits: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    semantic_duplicates: int = 0
    semantic_model: str | None = None  # the model whose embeddings judged semantic duplicates
    pruned: int = 0


def _phashes(store: DatasetStore) -> dict[str, tuple[str, int]]:
    """sop_instance_uid -> (study, dHash), reading images one row group at a time."""
    found: dict[str, tuple[str, int]] = {}
    for group in store.iter_row_groups(
        "images", ["sop_instance_uid", "study_instance_uid", "pixels", "shape", "dtype"]
    ):
        for row in group.rows.to_pylist():
            found[row["sop_instance_uid"]] = (row["study_instance_uid"], perceptual_hash(decode_row(row)))
    return found


def _embeddings(store: DatasetStore, uids: list[str]) -> tuple[str | None, np.ndarray]:
    """The model that made embeddings/, and one embedding row per uid, in order."""
    if not store.table_files("embeddings"):
        raise SourceError("no embeddings/ table: run `radpipe embed MODEL_URI DATASET` first")
    table = store.read_table("embeddings", ["sop_instance_uid", "embedding", "model"])
    models = sorted(str(m) for m in pc.unique(table["model"]).to_pylist())
    if len(models) > 1:
        raise SourceError(f"embeddings/ mixes {len(models)} models ({', '.join(models)}): re-run `radpipe embed`")
    row_of = {uid: i for i, uid in enumerate(table["sop_instance_uid"].to_pylist())}
    if len(row_of) < len(table):
        raise SourceError(f"embeddings/ holds {len(table) - len(row_of)} images twice: re-run `radpipe embed`")
    missing = sum(1 for uid in uids if uid not in row_of)
    if missing:
        raise SourceError(
            f"embeddings/ lacks {missing} of {len(uids)} training images (images came after it was made): "
            "re-run `radpipe embed MODEL_URI DATASET`"
        )
    chosen = table["embedding"].take(pa.array([row_of[uid] for uid in uids], pa.int64())).combine_chunks()
    widths = pc.unique(pc.list_value_length(chosen)).to_pylist()
    if chosen.null_count or len(widths) > 1:
        raise SourceError("embeddings/ has missing or differently sized embeddings: re-run `radpipe embed`")
    vectors = chosen.flatten().to_numpy().reshape(len(uids), widths[0] if widths else 0)
    return (models[0] if models else None), vectors


def _semantic_flags(
    store: DatasetStore, uids: list[str], rule: SemanticRule
) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """The embedding model, and removed uid -> (kept uid, prune reason) for SemDeDup over `uids`."""
    model, vectors = _embeddings(store, uids)
    removed = semantic_duplicates(
        uids,
        vectors,
        threshold=rule.threshold,
        keep_fraction=rule.keep_fraction,
        clusters=rule.clusters,
        seed=rule.seed,
    )
    return model, {
        uid: (kept, f"semantic duplicate of {kept} (cosine {cosine:.3f}, {model})")
        for uid, (kept, cosine) in removed.items()
    }


Flag = tuple[str, str, str]  # (duplicate kind, the image kept, why)


def curate(
    uri: str,
    pseudonymizer: Pseudonymizer,
    fractions: SplitFractions | None = None,
    near_threshold: int = DEFAULT_NEAR_THRESHOLD,
    semantic: SemanticRule | None = None,
) -> CurationSummary:
    """Assign patient splits, flag duplicates, and write studies/ and curation/ atomically."""
    if not 0 <= near_threshold < 64:
        raise ConfigError(f"--near-threshold must be between 0 and 63 bits, got {near_threshold}")
    store = DatasetStore(uri)
    if not store.table_files("studies"):
        raise SourceError(f"not an ingested radpipe dataset (no studies/): {uri}")
    summary = CurationSummary()
    studies = store.read_table("studies").to_pylist()
    _assign_splits(studies, pseudonymizer, fractions or SplitFractions(), summary)
    hashes = _phashes(store)
    flags = _duplicate_flags(store, hashes, near_threshold)
    if semantic is not None:
        # Only training images: pruning shapes what the model learns from, never what it is measured on.
        split_of = {s["study_instance_uid"]: s["split"] for s in studies}
        train = sorted(uid for uid, (study, _) in hashes.items() if split_of.get(study) == "train" and uid not in flags)
        summary.semantic_model, semantic_of = _semantic_flags(store, train, semantic)
        flags |= {uid: ("semantic", kept, reason) for uid, (kept, reason) in semantic_of.items()}
    rows = [_curation_row(uid, study, value, flags.get(uid)) for uid, (study, value) in sorted(hashes.items())]
    kinds = [r["duplicate_kind"] for r in rows]
    summary.exact_duplicates, summary.near_duplicates = kinds.count("exact"), kinds.count("near")
    summary.semantic_duplicates = kinds.count("semantic")
    summary.pruned = sum(1 for r in rows if r["prune"])
    replace_table(store, "studies", pa.Table.from_pylist(studies, schema=STUDIES))
    replace_table(store, "curation", pa.Table.from_pylist(rows, schema=CURATION))
    return summary


def _assign_splits(
    studies: list[dict[str, Any]], pseudonymizer: Pseudonymizer, fractions: SplitFractions, summary: CurationSummary
) -> None:
    """Each study's split, by its patient (keyed, so stable across runs); counts into `summary`."""
    real = any(not s["is_synthetic"] for s in studies)
    patients: dict[str, set[str]] = {s: set() for s in SPLITS}
    for study in studies:
        split = assign_split(study["patient_id"] or study["study_instance_uid"], pseudonymizer, fractions)
        if real and study["is_synthetic"]:
            split = "train"  # synthetic data never enters a real dataset's evaluation splits
        study["split"] = split
        patients[split].add(study["patient_id"])
        summary.studies_per_split[split] = summary.studies_per_split.get(split, 0) + 1
    summary.patients_per_split = {split: len(members) for split, members in patients.items()}
    owners: dict[str, set[str]] = {}
    for study in studies:
        owners.setdefault(study["patient_id"], set()).add(study["split"])
    summary.patients_in_several_splits = sum(1 for s in owners.values() if len(s) > 1)


def _duplicate_flags(store: DatasetStore, hashes: dict[str, tuple[str, int]], near_threshold: int) -> dict[str, Flag]:
    """Exact duplicates (same decoded pixels), then near ones (perceptual hash) among the rest; the first
    image by uid is kept."""
    instances = store.read_table("instances", ["sop_instance_uid", "content_hash"]).to_pylist()
    exact_of: dict[str, str] = {}
    first_with: dict[str, str] = {}
    for row in sorted(instances, key=lambda r: r["sop_instance_uid"]):
        kept = first_with.setdefault(row["content_hash"], row["sop_instance_uid"])
        if kept != row["sop_instance_uid"]:
            exact_of[row["sop_instance_uid"]] = kept
    near_of = near_duplicate_groups(
        ((uid, value) for uid, (_, value) in hashes.items() if uid not in exact_of), near_threshold
    )
    flags = {uid: ("exact", kept, f"exact duplicate of {kept}") for uid, kept in exact_of.items()}
    return flags | {uid: ("near", kept, f"near duplicate of {kept}") for uid, kept in near_of.items()}


def _curation_row(uid: str, study: str, phash: int, flag: Flag | None) -> dict[str, Any]:
    kind, duplicate_of, reason = flag or (None, None, None)
    return {
        "sop_instance_uid": uid,
        "study_instance_uid": study,
        "phash": f"{phash:064x}",
        "duplicate_of": duplicate_of,
        "duplicate_kind": kind,
        "prune": kind is not None,
        "prune_reason": reason,
    }
