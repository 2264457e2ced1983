"""Metrics on plain arrays: AUROC with bootstrap intervals, retrieval ranks and recall@k."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class Estimate:
    """A metric with its bootstrap 95% interval (nan bounds when no resample was informative)."""

    value: float
    low: float
    high: float


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan if one class is absent."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


class Resampler:
    """Bootstrap resamples of rows, drawing whole groups when given (a study's views share one report and
    one set of labels: resampling images alone would treat them as independent and narrow the interval).
    """

    def __init__(self, n: int, groups: Sequence[str] | np.ndarray | None, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = n
        if groups is None:
            self.members: list[np.ndarray] | None = None
        else:
            codes = np.unique(np.asarray(groups, dtype=object), return_inverse=True)[1].ravel()
            self.members = [np.flatnonzero(codes == g) for g in range(int(codes.max()) + 1 if n else 0)]

    def draw(self) -> np.ndarray:
        if self.members is None:
            return self.rng.integers(0, self.n, self.n)
        picks = self.rng.integers(0, len(self.members), len(self.members))
        return np.concatenate([self.members[i] for i in picks])


def bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels: np.ndarray,
    scores: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    groups: Sequence[str] | np.ndarray | None = None,
) -> Estimate:
    """The metric on all rows, and the 2.5-97.5 percentiles over resamples (of rows, or of `groups`).

    Deterministic for a seed; resamples where the metric is undefined (one class only) are skipped.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    resampler = Resampler(len(labels), groups, seed)
    values = []
    for _ in range(resamples if len(labels) else 0):
        rows = resampler.draw()
        value = metric(labels[rows], scores[rows])
        if not np.isnan(value):
            values.append(value)
    point = metric(labels, scores)
    if not values:
        return Estimate(point, float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return Estimate(point, float(low), float(high))


def macro_bootstrap(
    truths: Mapping[str, np.ndarray],
    scores: Mapping[str, np.ndarray],
    resamples: int = 1000,
    seed: int = 0,
    groups: Sequence[str] | np.ndarray | None = None,
) -> Estimate:
    """Mean AUROC over labels, with an interval from resampling images (or groups) jointly for all labels.

    `truths[name]` holds 1/0 per row, nan where unknown; `scores[name]` one score per row.
    """
    names = sorted(scores)
    n = len(truths[names[0]]) if names else 0

    def macro(rows: np.ndarray) -> float:
        values = []
        for name in names:
            truth, score = truths[name][rows], scores[name][rows]
            known = ~np.isnan(truth)
            values.append(auroc(truth[known], score[known]))
        return float(np.nanmean(values)) if values and not np.all(np.isnan(values)) else float("nan")

    return bootstrap_rows(macro, n, groups, resamples, seed)


def bootstrap_rows(
    metric: Callable[[np.ndarray], float],
    n: int,
    groups: Sequence[str] | np.ndarray | None,
    resamples: int,
    seed: int,
) -> Estimate:
    """A metric of row indices on all `n` rows, and the 2.5-97.5 percentiles over resamples of rows (or of
    `groups`); resamples where it is undefined (nan) are skipped."""
    point = metric(np.arange(n))
    resampler = Resampler(n, groups, seed)
    values = [v for v in (metric(resampler.draw()) for _ in range(resamples if n else 0)) if not np.isnan(v)]
    if not values:
        return Estimate(point, float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return Estimate(point, float(low), float(high))


def retrieval_ranks(similarity: np.ndarray, relevant: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of the best relevant candidate in each row of a query x candidate similarity.

    `relevant[i, j]` marks candidates that answer query i (default: the diagonal). Identical report texts
    are all relevant: picking the twin of a report is not a retrieval error.
    """
    if relevant is None:
        relevant = np.eye(*similarity.shape, dtype=bool)
    best = np.where(relevant, similarity, -np.inf).max(axis=1, keepdims=True)
    # Ties count against the query: a model that scores everything equal must not look perfect.
    return 1 + ((similarity >= best) & ~relevant).sum(axis=1)


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks <= k))
