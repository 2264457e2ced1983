"""Which images a fine-tune learns from and is measured on: a finding's known (1/0) rows of a split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from radpipe.dataset.store import DatasetStore
from radpipe.errors import SourceError
from radpipe.evaluate.data import LabelledSplit, Progress, embed_images_of, iter_pixels
from radpipe.finetune.classifier import last_stage_inputs
from radpipe.finetune.config import Mode
from radpipe.model.embedder import CHUNK, Embedder


@dataclass(frozen=True)
class FindingRows:
    """Images of one split whose report states the finding present (1) or absent (0); uncertain ones left out."""

    rows: LabelledSplit
    targets: np.ndarray  # float32, 1.0 or 0.0, aligned with rows.uids

    @property
    def positives(self) -> int:
        return int(self.targets.sum())

    @property
    def negatives(self) -> int:
        return len(self.targets) - self.positives

    def __len__(self) -> int:
        return len(self.targets)


def known_rows(split: LabelledSplit, label: str) -> FindingRows:
    truth = split.labels[label]
    rows = np.flatnonzero((truth == 0) | (truth == 1))
    return FindingRows(split.subset(rows), truth[rows].astype(np.float32))


def select_shots(targets: np.ndarray, shots: int | None, seed: int) -> np.ndarray:
    """Row indices to train on: `shots` positives drawn with the seed (all if None) and every negative, sorted.

    Negatives are all kept: a rare finding's scarcity is in its positives, and the loss is class-balanced.
    """
    positives = np.flatnonzero(targets == 1)
    negatives = np.flatnonzero(targets == 0)
    if shots is not None:
        if shots > len(positives):
            raise ValueError(f"{shots} shots asked, {len(positives)} positives available")
        positives = np.random.default_rng(seed).choice(positives, size=shots, replace=False)
    return np.sort(np.concatenate([positives, negatives]))


def training_rows(split: LabelledSplit, label: str, shots: int | None, seed: int) -> FindingRows:
    """The train split's rows to learn from; a clear error if the finding cannot be learnt from them."""
    known = known_rows(split, label)
    if known.positives == 0:
        raise SourceError(
            f"no image in the {split.split} split has a report stating {label} present: nothing to learn from"
        )
    if known.negatives == 0:
        raise SourceError(f"no image in the {split.split} split has a report stating {label} absent: no contrast")
    if shots is not None and shots > known.positives:
        raise SourceError(
            f"--shots {shots} asked for more {label} positives than the {split.split} split has ({known.positives})"
        )
    chosen = select_shots(known.targets, shots, seed)
    return FindingRows(known.rows.subset(chosen), known.targets[chosen])


def evaluation_rows(split: LabelledSplit, label: str) -> FindingRows:
    """The test split's rows to measure on: AUROC needs at least one image of each class."""
    known = known_rows(split, label)
    if known.positives == 0 or known.negatives == 0:
        missing = "positive" if known.positives == 0 else "negative"
        raise SourceError(
            f"the {split.split} split has no {missing} image for {label} ({known.positives} positive, "
            f"{known.negatives} negative): the fine-tune could not be measured; add data or pick another finding"
        )
    return known


def features_of(
    store: DatasetStore, rows: LabelledSplit, embedder: Embedder, mode: Mode, on_progress: Progress | None = None
) -> torch.Tensor:
    """The classifier's input for every row (aligned with rows.uids), computed once with the frozen encoder."""
    if mode == "frozen":
        return torch.from_numpy(embed_images_of(store, rows, embedder, on_progress))
    position = {uid: i for i, uid in enumerate(rows.uids)}
    captured: list[torch.Tensor] = []
    order: list[int] = []
    chunk: list[np.ndarray] = []

    def flush() -> None:
        if chunk:
            images = torch.from_numpy(np.stack(chunk)[:, None]).to(embedder.device)
            captured.append(last_stage_inputs(embedder.model, images).float().cpu())
            chunk.clear()
            if on_progress is not None:
                on_progress(len(order), len(rows))

    for uid, pixels in iter_pixels(store, rows.uids):
        order.append(position[uid])
        chunk.append(embedder.image_input(pixels))
        if len(chunk) >= CHUNK:
            flush()
    flush()
    if len(set(order)) != len(rows):
        raise SourceError(f"{len(rows) - len(set(order))} image(s) of the {rows.split} split are missing from images/")
    features = torch.cat(captured)
    out = torch.empty_like(features)
    out[torch.as_tensor(order)] = features
    return out
