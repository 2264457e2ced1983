"""Metrics on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from radpipe.evaluate.metrics import Estimate, auroc, bootstrap, macro_bootstrap, recall_at, retrieval_ranks
from radpipe.evaluate.retrieval import ranks_by_group, text_groups


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


def test_grouped_bootstrap_treats_a_groups_copies_as_one_observation() -> None:
    """Each row twice, grouped in pairs: the same interval as the rows once (AUROC ignores duplicated pairs)."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 40)
    scores = rng.normal(size=40) + labels
    once = bootstrap(auroc, labels, scores, resamples=300, seed=4)
    twice = bootstrap(
        auroc, np.repeat(labels, 2), np.repeat(scores, 2), resamples=300, seed=4, groups=np.repeat(range(40), 2)
    )
    assert twice == once
    naive = bootstrap(auroc, np.repeat(labels, 2), np.repeat(scores, 2), resamples=300, seed=4)
    assert naive.high - naive.low < once.high - once.low  # copies counted as independent: too narrow


def test_macro_bootstrap_known_values() -> None:
    truths = {"a": np.array([0, 0, 1, 1.0]), "b": np.array([1, np.nan, 0, 1.0])}
    perfect = {"a": np.array([0.1, 0.2, 0.8, 0.9]), "b": np.array([0.9, 0.0, 0.1, 0.8])}
    assert macro_bootstrap(truths, perfect, resamples=200) == Estimate(1.0, 1.0, 1.0)
    mixed = {"a": np.array([0.1, 0.2, 0.8, 0.9]), "b": np.array([0.1, 0.0, 0.9, 0.8])}  # b inverted: AUROC 0
    estimate = macro_bootstrap(truths, mixed, resamples=200, seed=1)
    assert estimate.value == 0.5 and estimate.low <= 0.5 <= estimate.high


def test_identical_reports_are_all_right_answers_and_ties_count_against() -> None:
    texts = ["no effusion", "effusion", "no effusion"]
    groups = text_groups(texts)
    relevant = groups[:, None] == groups[None, :]
    assert relevant.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    similarity = np.array([[0.1, 0.2, 0.9], [0.0, 0.5, 0.1], [0.3, 0.3, 0.2]])
    # Row 0: its twin (col 2) is best -> rank 1. Row 2: best relevant 0.3 ties the irrelevant 0.3 -> rank 2.
    assert retrieval_ranks(similarity, relevant).tolist() == [1, 1, 2]


def test_ranks_computed_in_blocks_equal_the_dense_ranks() -> None:
    """Blocks of queries (memory linear in the pairs) rank exactly as the whole similarity matrix does."""
    rng = np.random.default_rng(3)
    # Small integers: every product is exact whatever the blocks' summation order, and ties happen.
    queries = rng.integers(-3, 4, size=(203, 8)).astype(np.float32)
    candidates = rng.integers(-3, 4, size=(203, 8)).astype(np.float32)
    groups = rng.integers(0, 150, size=203)  # some pairs share a report text
    dense = retrieval_ranks(queries @ candidates.T, groups[:, None] == groups[None, :])
    for block_values in (1, 203 * 7, 10**9):  # one query a block, seven, all at once
        assert ranks_by_group(queries, candidates, groups, block_values).tolist() == dense.tolist()
    assert len(set(dense.tolist())) > 10


def test_uncertain_and_unmentioned_labels_are_left_out() -> None:
    from radpipe.evaluate.data import _label_value

    assert [_label_value(v) for v in (1, 0)] == [1.0, 0.0]
    assert all(np.isnan(_label_value(v)) for v in (-1, None))
