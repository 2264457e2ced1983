"""Image-to-report and report-to-image retrieval over paired embeddings (row i of each is one pair).

Ranks are computed a block of queries at a time, so memory grows with the number of pairs, not its square:
the dense similarity of 10^5 test pairs alone would take 40 GB.
"""

from __future__ import annotations

import numpy as np

from radpipe.evaluate.metrics import recall_at

KS = (1, 5, 10)
# Similarities held at once (query block x candidates): 2^25 float32 values, 128 MB, plus a mask as large.
BLOCK_VALUES = 1 << 25


def text_groups(texts: list[str]) -> np.ndarray:
    """One code per pair; pairs whose reports read the same (templated normals do) share it and answer each
    other's query."""
    return np.unique(np.asarray(texts, dtype=object), return_inverse=True)[1].reshape(-1)


def ranks_by_group(
    queries: np.ndarray, candidates: np.ndarray, groups: np.ndarray, block_values: int = BLOCK_VALUES
) -> np.ndarray:
    """1-based rank of the best relevant candidate for each query; candidate j answers query i when
    groups[i] == groups[j] (i answers itself). Ties count against the query (radpipe.evaluate.metrics
    retrieval_ranks, computed in blocks of queries)."""
    rows = max(1, block_values // max(1, len(candidates)))
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), rows):
        similarity = queries[start : start + rows] @ candidates.T
        relevant = groups[start : start + rows, None] == groups[None, :]
        best = np.where(relevant, similarity, -np.inf).max(axis=1, keepdims=True)
        ranks[start : start + rows] = 1 + ((similarity >= best) & ~relevant).sum(axis=1)
    return ranks


def retrieval_metrics(
    image_emb: np.ndarray, text_emb: np.ndarray, groups: np.ndarray | None = None
) -> dict[str, float]:
    """recall@1/5/10 and median rank both ways, named as MLflow metrics (issue 6's names).

    Row i of both is one image-report pair; pairs of one `groups` code (default: each pair its own) are all
    right answers to each other's queries.
    """
    groups = np.arange(len(image_emb)) if groups is None else np.asarray(groups)
    metrics: dict[str, float] = {}
    for direction, ranks in (
        ("image_to_text", ranks_by_group(image_emb, text_emb, groups)),
        ("text_to_image", ranks_by_group(text_emb, image_emb, groups)),
    ):
        for k in KS:
            metrics[f"retrieval_{direction}_recall_at_{k}"] = recall_at(ranks, k)
        metrics[f"retrieval_{direction}_median_rank"] = float(np.median(ranks))
    return metrics
