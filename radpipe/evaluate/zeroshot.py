"""Zero-shot classification from embeddings: each image against a label's positive and negative prompt."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from radpipe.evaluate.metrics import Estimate, auroc, bootstrap


def prompt_scores(image_emb: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Per image: similarity to the positive prompt minus similarity to the negative one (unit vectors).

    The prompts are one vector each, or one row per image (each image's prompt read after its own
    examination line, for a model of radiographs and volumes)."""
    if positive.ndim == 2:
        return np.einsum("nd,nd->n", image_emb, positive - negative)
    return image_emb @ positive - image_emb @ negative


def zeroshot_aurocs(
    image_emb: np.ndarray,
    labels: Mapping[str, np.ndarray],
    prompt_emb: Mapping[str, tuple[np.ndarray, np.ndarray]],
    resamples: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """AUROC with a bootstrap 95% interval per label that has prompts and both classes among the images.

    `labels[name]` holds 1 (present), 0 (absent) or -1/nan (uncertain, unmentioned: left out) per image;
    `groups` (a study per image) makes the bootstrap resample studies.
    """
    results = {}
    for name, (positive, negative) in prompt_emb.items():
        truth = np.asarray(labels[name], dtype=np.float64)
        known = (truth == 0) | (truth == 1)
        if known.sum() < 2 or len(np.unique(truth[known])) < 2:
            continue
        if positive.ndim == 2:  # a prompt per image
            positive, negative = positive[known], negative[known]
        scores = prompt_scores(image_emb[known], positive, negative)
        kept = None if groups is None else np.asarray(groups, dtype=object)[known]
        results[name] = bootstrap(auroc, truth[known], scores, resamples=resamples, seed=seed, groups=kept)
    return results
