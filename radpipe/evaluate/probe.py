"""Linear probes on frozen embeddings: how much of each label a plain logistic regression can read off."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression

from radpipe.evaluate.metrics import Estimate, auroc, bootstrap


def _known(truth: np.ndarray) -> np.ndarray:
    return (truth == 0) | (truth == 1)


def probe_aurocs(
    train_emb: np.ndarray,
    train_labels: Mapping[str, np.ndarray],
    test_emb: np.ndarray,
    test_labels: Mapping[str, np.ndarray],
    resamples: int = 1000,
    seed: int = 0,
    test_groups: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Per label: fit on the train split's known (0/1) rows, AUROC with a bootstrap interval on the test split's.

    Labels with one class on either side are skipped (nothing to learn, or nothing to measure).
    """
    results = {}
    for name, train_truth in train_labels.items():
        train_truth = np.asarray(train_truth, dtype=np.float64)
        test_truth = np.asarray(test_labels[name], dtype=np.float64)
        fit_rows, test_rows = _known(train_truth), _known(test_truth)
        if len(np.unique(train_truth[fit_rows])) < 2 or len(np.unique(test_truth[test_rows])) < 2:
            continue
        # Balanced weights: rare findings are the point of a probe; a deterministic solver for reproducibility.
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, solver="lbfgs")
        model.fit(train_emb[fit_rows], train_truth[fit_rows].astype(int))
        scores = model.decision_function(test_emb[test_rows])
        kept = None if test_groups is None else np.asarray(test_groups, dtype=object)[test_rows]
        results[name] = bootstrap(auroc, test_truth[test_rows], scores, resamples=resamples, seed=seed, groups=kept)
    return results
