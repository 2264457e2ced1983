"""Zero-shot modality (and body part) recognition: each image or volume against examination-line prompts.

A model of radiographs and volumes read every report after its examination line ("CT of the chest.",
radpipe.model.exam); here it is asked those lines back. The candidates are every modality a model of both
serves (radiograph, CT, MR, and any other the split holds) with every body part the split holds, so a
radiograph can be taken for a CT of the same region, and a chest CT for a head CT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from radpipe.evaluate.metrics import bootstrap_rows
from radpipe.model.exam import exam_line

KINDS = ("radiograph", "CT", "MR")


def _ensemble(embed_texts: Callable[[list[str]], np.ndarray], exam: str, contexts: Sequence[str]) -> np.ndarray:
    vectors = embed_texts([f"{exam} {context}".strip() for context in contexts])
    mean = vectors.mean(axis=0)
    return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-12))


def modality_metrics(
    embeddings: np.ndarray,
    kinds: Sequence[str],
    body_parts: Sequence[str],
    embed_texts: Callable[[list[str]], np.ndarray],
    groups: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    contexts: Sequence[str] = ("",),
) -> dict[str, float]:
    """`modality_accuracy` (balanced: the mean of the per-modality accuracies) with its study-level bootstrap
    interval, the accuracy per modality, and `body_part_accuracy` when the rows hold more than one known body
    part.

    `contexts`: CLIP's prompt ensembling. Each candidate's examination line is embedded followed by each context
    sentence (the same sentences for every candidate: the model only ever read an examination line before a
    report), and the candidate's prompt is the normalised mean of those embeddings.

    Row i: a unit-norm image/volume embedding, its modality kind (radpipe.model.exam.modality_kind), its body
    part in words ('' unknown), its study."""
    candidates = [(k, b) for k in sorted(set(KINDS) | set(kinds)) for b in sorted(set(body_parts))]
    prompts = np.stack([_ensemble(embed_texts, exam_line(k, b), contexts) for k, b in candidates])
    chosen = np.argmax(embeddings @ prompts.T, axis=1)
    right = np.array([candidates[c][0] == k for c, k in zip(chosen, kinds, strict=True)], dtype=np.float64)
    kind_of = np.asarray(kinds, dtype=object)

    def balanced(rows: np.ndarray) -> float:
        # The mean of the per-modality accuracies: radiographs outnumber series many times, and a model calling
        # everything a radiograph must not score 0.9.
        present = kind_of[rows]
        return float(np.mean([right[rows][present == kind].mean() for kind in np.unique(present)]))

    estimate = bootstrap_rows(balanced, len(kinds), groups, resamples, seed)
    metrics = {
        "modality_accuracy": estimate.value,
        "modality_accuracy_ci_low": estimate.low,
        "modality_accuracy_ci_high": estimate.high,
    }
    for kind in sorted(set(kinds)):
        metrics[f"modality_accuracy_{kind}"] = float(right[kind_of == kind].mean())
    known = np.array([bool(b) for b in body_parts])
    if len({b for b in body_parts if b}) > 1:
        part_right = np.array([candidates[c][1] == b for c, b in zip(chosen, body_parts, strict=True)])
        metrics["body_part_accuracy"] = float(part_right[known].mean())
    return metrics
