"""The training view of a dataset: which images pair with which report text, and how a batch is prepared.

Pure pyarrow and numpy: Ray Data calls `prepare_batch` in its workers (radpipe/train/ray.py), the plain
PyTorch baseline and the served model call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from radpipe.dataset.store import DatasetStore
from radpipe.errors import SourceError
from radpipe.model.config import AugmentConfig
from radpipe.preprocess.profile import to_model_input


@dataclass(frozen=True)
class TrainingView:
    """Per split: the image ids to read and the report text each pairs with."""

    profile: str
    texts: dict[str, dict[str, str]]  # split -> sop_instance_uid -> report text
    unsplit: int = 0  # paired images whose study has no split yet (ingested after the last curate)

    def count(self, split: str) -> int:
        return len(self.texts.get(split, {}))


def report_text(findings: str | None, impression: str | None, text: str | None) -> str:
    """Findings and impression are what an image shows; the indication says why it was taken, so it is left out."""
    parts = [p.strip() for p in (findings, impression) if p and p.strip()]
    return " ".join(parts) if parts else (text or "").strip()


def training_view(store: DatasetStore) -> TrainingView:
    """Join images -> studies (split) -> reports (text), dropping pruned images and studies without a report."""
    if not store.table_files("images"):
        raise SourceError(f"not an ingested radpipe dataset (no images/): {store.uri}")
    if not store.table_files("curation") or not store.table_files("studies"):
        raise SourceError("the dataset has no splits or curation flags yet: run `radpipe curate DATASET` first")
    images = store.read_table("images", ["sop_instance_uid", "study_instance_uid", "profile"])
    profiles = pc.unique(images["profile"]).to_pylist()
    if len(profiles) != 1:
        raise SourceError(f"images were ingested with several profiles ({', '.join(map(str, profiles))}); one expected")
    curation = store.read_table("curation", ["sop_instance_uid", "prune"])
    pruned = pc.filter(curation["sop_instance_uid"], pc.fill_null(curation["prune"], False))
    images = images.filter(pc.invert(pc.is_in(images["sop_instance_uid"], value_set=pruned)))
    studies = store.read_table("studies", ["study_instance_uid", "split", "report_id"])
    reports = store.read_table("reports", ["report_id", "findings", "impression", "text"])
    joined = images.join(studies, "study_instance_uid").join(reports, "report_id")
    texts: dict[str, dict[str, str]] = {}
    unsplit = 0
    for row in joined.select(["sop_instance_uid", "split", "findings", "impression", "text"]).to_pylist():
        body = report_text(row["findings"], row["impression"], row["text"])
        if body and row["split"]:
            texts.setdefault(row["split"], {})[row["sop_instance_uid"]] = body
        elif body:
            unsplit += 1
    return TrainingView(profile=str(profiles[0]), texts=texts, unsplit=unsplit)


def augment(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A small random shift, zoom and gamma; no flips (a left-sided heart is a finding)."""
    size = image.shape[0]
    scale = 1.0 + rng.uniform(-cfg.max_scale, cfg.max_scale)
    dx, dy = rng.uniform(-cfg.max_shift, cfg.max_shift, size=2) * size
    centre = size / 2
    matrix = np.array([[scale, 0, centre - scale * centre + dx], [0, scale, centre - scale * centre + dy]])
    moved = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    gamma = float(np.exp(rng.uniform(-cfg.contrast, cfg.contrast)))
    return np.power(np.clip(moved, 0.0, 1.0), gamma, dtype=np.float32)


def prepare_batch(
    batch: dict[str, Any],
    texts: dict[str, str],
    tokenize: Any,
    input_size: int,
    augmentation: AugmentConfig | None,
) -> dict[str, np.ndarray]:
    """Rows of images/ (pixels, shape, dtype) to model inputs; rows not in `texts` are dropped."""
    keep = [i for i, uid in enumerate(batch["sop_instance_uid"]) if uid in texts]
    rng = np.random.default_rng()
    images = np.empty((len(keep), 1, input_size, input_size), dtype=np.float32)
    for out, i in enumerate(keep):
        stored = np.frombuffer(batch["pixels"][i], dtype=batch["dtype"][i]).reshape(batch["shape"][i])
        image = to_model_input(stored, input_size)
        images[out, 0] = augment(image, augmentation, rng) if augmentation is not None else image
    ids, mask = tokenize([texts[batch["sop_instance_uid"][i]] for i in keep])
    return {"image": images, "ids": ids, "mask": mask}


def read_split_table(store: DatasetStore, view: TrainingView, split: str) -> pa.Table:
    """All image rows of one split, in memory: for the plain-PyTorch baseline and small evaluations."""
    wanted = pa.array(list(view.texts.get(split, {})), pa.string())
    images = store.read_table("images", ["sop_instance_uid", "pixels", "shape", "dtype"])
    return images.filter(pc.is_in(images["sop_instance_uid"], value_set=wanted))
