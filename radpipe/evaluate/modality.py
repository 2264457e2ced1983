"""Zero-shot modality (and body part) recognition: each image or volume against examination-line prompts.

No modality label is used: the prompts are examination lines before validation-split reports, and each row
is scored on the reports nearest to it.

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
# Contexts a row is scored on: its nearest reports (one gave the same accuracy on the demo, all 64 far less).
NEIGHBOURS = 5
ROWS = 4096  # rows scored at once: rows x candidates x contexts similarities stay small


def _choose(embeddings: np.ndarray, prompts: np.ndarray, neighbours: int) -> np.ndarray:
    """Each row's candidate: its similarity to every candidate line before every context [rows, K, C], the
    contexts nearest under any line, the candidate scoring best on those."""
    similarity = np.einsum("ne,kce->nkc", embeddings, prompts)
    nearest = np.argsort(-similarity.max(axis=1), axis=1, kind="stable")[:, :neighbours]  # [rows, neighbours]
    scores = np.take_along_axis(similarity, nearest[:, None, :], axis=2).mean(axis=2)  # [rows, candidates]
    return np.argmax(scores, axis=1)


def modality_metrics(
    embeddings: np.ndarray,
    kinds: Sequence[str],
    body_parts: Sequence[str],
    embed_texts: Callable[[list[str]], np.ndarray],
    groups: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    contexts: Sequence[str] = ("",),
    neighbours: int = NEIGHBOURS,
) -> dict[str, float]:
    """`modality_accuracy` (balanced: the mean of the per-modality accuracies) with its study-level bootstrap
    interval, the accuracy per modality, and `body_part_accuracy` when the rows hold more than one known body
    part.

    `contexts` (report texts, none of the rows' own): each candidate's prompt is its examination line followed by
    a context, as the model read every report. A row is scored against the `neighbours` contexts it is closest
    to under any candidate line (the same contexts for every candidate, chosen without its label): the
    candidates' prompts then differ in the examination words alone, on reports like the row's.

    Row i: a unit-norm image/volume embedding, its modality kind (radpipe.model.exam.modality_kind), its body
    part in words ('' unknown), its study."""
    candidates = [(k, b) for k in sorted(set(KINDS) | set(kinds)) for b in sorted(set(body_parts))]
    prompts = embed_texts([f"{exam_line(k, b)} {context}".strip() for k, b in candidates for context in contexts])
    prompts = prompts.reshape(len(candidates), len(contexts), -1)
    chosen = np.concatenate(
        [_choose(embeddings[start : start + ROWS], prompts, neighbours) for start in range(0, len(embeddings), ROWS)]
    )
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
