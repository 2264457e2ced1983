"""Image-to-report and report-to-image retrieval over paired embeddings (row i of each is one pair)."""

from __future__ import annotations

import numpy as np

from radpipe.evaluate.metrics import recall_at, retrieval_ranks

KS = (1, 5, 10)


def same_text(texts: list[str]) -> np.ndarray:
    """Pairs whose reports read the same (templated normals do): each answers the other's query."""
    codes = np.unique(np.asarray(texts, dtype=object), return_inverse=True)[1]
    return codes[:, None] == codes[None, :]


def retrieval_metrics(
    image_emb: np.ndarray, text_emb: np.ndarray, relevant: np.ndarray | None = None
) -> dict[str, float]:
    """recall@1/5/10 and median rank both ways, named as MLflow metrics (issue 6's names).

    Row i of both is one image-report pair; `relevant` (default: the diagonal) marks further right answers.
    """
    similarity = image_emb @ text_emb.T
    relevant = np.eye(len(image_emb), dtype=bool) if relevant is None else relevant
    metrics: dict[str, float] = {}
    for direction, ranks in (
        ("image_to_text", retrieval_ranks(similarity, relevant)),
        ("text_to_image", retrieval_ranks(similarity.T, relevant.T)),
    ):
        for k in KS:
            metrics[f"retrieval_{direction}_recall_at_{k}"] = recall_at(ranks, k)
        metrics[f"retrieval_{direction}_median_rank"] = float(np.median(ranks))
    return metrics
