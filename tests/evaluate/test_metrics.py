"""Metrics on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from radpipe.evaluate.metrics import auroc, bootstrap, recall_at, retrieval_ranks


def test_auroc_known_values() -> None:
    labels = np.array([0, 0, 1, 1])
    assert auroc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auroc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert auroc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75  # the textbook example
    assert np.isnan(auroc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_auroc_matches_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = np.round(labels * 0.5 + rng.normal(size=500), 1)  # rounded: many ties
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = labels + rng.normal(scale=1.0, size=300)
    first = bootstrap(auroc, labels, scores, resamples=400, seed=7)
    assert first == bootstrap(auroc, labels, scores, resamples=400, seed=7)
    assert first.low < first.value < first.high
    assert 0.05 < first.high - first.low < 0.2  # n=300 at AUROC ~0.76: a width of about 0.1
    small = bootstrap(auroc, labels[:30], scores[:30], resamples=400, seed=7)
    assert small.high - small.low > first.high - first.low  # fewer rows, wider interval


def test_bootstrap_with_one_class_has_no_interval() -> None:
    estimate = bootstrap(auroc, np.ones(10), np.arange(10.0), resamples=50)
    assert np.isnan(estimate.value) and np.isnan(estimate.low) and np.isnan(estimate.high)


def test_retrieval_ranks_and_recall() -> None:
    similarity = np.array([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.3, 0.3, 0.3]])
    ranks = retrieval_ranks(similarity)
    assert ranks.tolist() == [1, 2, 3]  # the last row's tie counts against it
    assert recall_at(ranks, 1) == pytest.approx(1 / 3)
    assert recall_at(ranks, 5) == 1.0
