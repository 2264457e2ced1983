"""Image-to-report and report-to-image retrieval over paired embeddings (row i of each is one pair)."""

from __future__ import annotations

import numpy as np

from radpipe.evaluate.metrics import recall_at, retrieval_ranks

KS = (1, 5, 10)


def retrieval_metrics(image_emb: np.ndarray, text_emb: np.ndarray) -> dict[str, float]:
    """recall@1/5/10 and median rank both ways, named as MLflow metrics (issue 6's names)."""
    similarity = image_emb @ text_emb.T
    metrics: dict[str, float] = {}
    for direction, ranks in (
        ("image_to_text", retrieval_ranks(similarity)),
        ("text_to_image", retrieval_ranks(similarity.T)),
    ):
        for k in KS:
            metrics[f"retrieval_{direction}_recall_at_{k}"] = recall_at(ranks, k)
        metrics[f"retrieval_{direction}_median_rank"] = float(np.median(ranks))
    return metrics
