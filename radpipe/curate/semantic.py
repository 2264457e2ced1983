"""Semantic duplicates (SemDeDup, Abbas et al. 2023): near-identical embeddings within a k-means cluster.

Clustering first keeps the comparison cheap (pairs only within a cluster) and local: a redundant image
sits in the same cluster as what it repeats. Within a cluster the items are ordered by cosine similarity to
the centroid, *ascending*: the paper's default (`keep_hard`) sorts by distance to the centroid, descending,
and removes an item when it is too similar to one earlier in that order, so the least prototypical item of a
group of near-copies is the one kept (prototypical images are the ones the rest of the data already covers).

One departure: the paper compares an item with every earlier item, removed ones too, so along a chain
a ~ b ~ c (a and c apart) it removes both b and c. Here an item is compared with the earlier items that were
*kept*, so every removed item has a kept item it duplicates, and no two kept items in a cluster are duplicates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from radpipe.errors import ConfigError

# float32 unit vectors: an identical copy scores 1 - 1e-7, and must still count as a duplicate at threshold 1.
TOLERANCE = 1e-6
# Bisection steps for keep_fraction: the threshold to 1e-6, far finer than any change in what is kept.
SEARCH_STEPS = 20


@dataclass(frozen=True)
class SemanticRule:
    """How much semantic redundancy to prune: exactly one of a cosine threshold or a share to keep."""

    threshold: float | None = None  # cosine at or above which an image repeats a kept one (e.g. 0.95)
    keep_fraction: float | None = None  # or: the share of images to keep; the threshold is chosen to match
    clusters: int | None = None  # k-means clusters; None: about sqrt(n / 2), the paper's scale per cluster
    seed: int = 0  # k-means initialisation, so the same data and seed always prune the same images

    def __post_init__(self) -> None:
        if (self.threshold is None) == (self.keep_fraction is None):
            raise ConfigError("semantic pruning takes exactly one of a cosine threshold or a keep fraction")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise ConfigError(f"semantic threshold must be a cosine in (0, 1], got {self.threshold}")
        if self.keep_fraction is not None and not 0 < self.keep_fraction <= 1:
            raise ConfigError(f"semantic keep fraction must be in (0, 1], got {self.keep_fraction}")
        if self.clusters is not None and self.clusters < 1:
            raise ConfigError(f"semantic clusters must be at least 1, got {self.clusters}")


def semantic_duplicates(
    uids: Sequence[str],
    embeddings: np.ndarray,
    *,
    threshold: float | None = None,
    keep_fraction: float | None = None,
    clusters: int | None = None,
    seed: int = 0,
) -> dict[str, tuple[str, float]]:
    """Map each removed item to (the kept item it duplicates, their cosine); the same for any input order."""
    rule = SemanticRule(threshold, keep_fraction, clusters, seed)
    if embeddings.ndim != 2 or len(embeddings) != len(uids):
        raise ConfigError(f"expected one embedding row per uid ({len(uids)}), got shape {embeddings.shape}")
    if len(set(uids)) != len(uids):
        raise ConfigError("each uid must appear once")
    if not uids:
        return {}
    order = np.argsort(np.asarray(uids, dtype=object), kind="stable")
    names = [uids[i] for i in order]
    vectors = unit(embeddings[order].astype(np.float32))  # the table says unit norm; dot = cosine only if so
    groups = cluster_orders(vectors, rule.clusters, rule.seed)
    if rule.threshold is not None:
        removed = prune(vectors, groups, rule.threshold)
    else:
        assert rule.keep_fraction is not None
        removed = prune_to_fraction(vectors, groups, rule.keep_fraction)
    return {names[i]: (names[j], cosine) for i, (j, cosine) in sorted(removed.items())}


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def cluster_orders(vectors: np.ndarray, clusters: int | None, seed: int) -> list[np.ndarray]:
    """Row indices of each k-means cluster, least similar to its centroid first (the paper's `keep_hard`)."""
    n = len(vectors)
    k = min(n, clusters or max(1, round(math.sqrt(n / 2))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # many identical copies: fewer distinct points than k
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(vectors)
    centroids = unit(kmeans.cluster_centers_)
    labels = kmeans.labels_
    to_centroid = np.einsum("ij,ij->i", vectors, centroids[labels])
    groups = []
    for label in range(k):
        members = np.flatnonzero(labels == label)
        groups.append(members[np.argsort(to_centroid[members], kind="stable")])
    return [g for g in groups if len(g)]


def prune(vectors: np.ndarray, groups: list[np.ndarray], threshold: float) -> dict[int, tuple[int, float]]:
    """Removed row -> (kept row, cosine): in each cluster's order, drop an item within `threshold` of a kept one."""
    cut = threshold - TOLERANCE
    removed: dict[int, tuple[int, float]] = {}
    for members in groups:
        similarity = vectors[members] @ vectors[members].T
        # An item that no earlier item reaches is kept whatever was kept before it: only the rest need the
        # sequential pass. (This is the paper's M_i, the max similarity to any earlier item.)
        earlier = np.tri(len(members), k=-1, dtype=bool)
        earlier_max = np.where(earlier, similarity, -np.inf).max(axis=1)  # the first item has none: -inf
        kept = np.ones(len(members), dtype=bool)
        for i in np.flatnonzero(earlier_max >= cut):
            row = np.where(kept[:i], similarity[i, :i], -np.inf)
            j = int(np.argmax(row))
            if row[j] >= cut:
                kept[i] = False
                removed[int(members[i])] = (int(members[j]), min(1.0, float(row[j])))
    return removed


def prune_to_fraction(
    vectors: np.ndarray, groups: list[np.ndarray], keep_fraction: float
) -> dict[int, tuple[int, float]]:
    """The pruning whose threshold keeps about `keep_fraction` of the items, found by bisection.

    What is kept grows with the threshold (not strictly: a removed item can free others), so the result
    keeps at least the fraction asked where any threshold does, and as few more as the data allows.
    """
    if keep_fraction == 1:
        return {}  # keep everything, identical copies too: what was asked for
    target = keep_fraction * len(vectors)
    best = prune(vectors, groups, 1.0)
    if len(vectors) - len(best) <= target:
        return best
    low, high = -1.0, 1.0  # cosines can be negative: a tiny fraction may need a cut below zero
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        removed = prune(vectors, groups, middle)
        if len(vectors) - len(removed) < target:
            low = middle
        else:
            high, best = middle, removed
    return best
