"""Which rows a fine-tune learns from: few-shot selection, uncertain reports left out, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from radpipe.errors import SourceError
from radpipe.evaluate.data import LabelledSplit
from radpipe.finetune.data import evaluation_rows, known_rows, select_shots, training_rows
from radpipe.reports.label_rules import LABELS

NAN = float("nan")


def _split(truth: list[float], name: str = "train") -> LabelledSplit:
    n = len(truth)
    labels = {label: np.full(n, NAN) for label in LABELS}
    labels["pneumothorax"] = np.asarray(truth, dtype=np.float64)
    return LabelledSplit(name, [f"uid{i:03d}" for i in range(n)], [f"study{i}" for i in range(n)], ["x"] * n, labels)


def test_few_shot_picks_exactly_n_positives_and_keeps_every_negative() -> None:
    targets = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1], dtype=np.float32)
    rows = select_shots(targets, 3, seed=7)
    assert int(targets[rows].sum()) == 3
    assert set(np.flatnonzero(targets == 0)) <= set(rows.tolist())
    assert len(rows) == 3 + 4 and (np.diff(rows) > 0).all()


def test_few_shot_choice_is_seeded() -> None:
    targets = np.array([1] * 20 + [0] * 10, dtype=np.float32)
    first, again = select_shots(targets, 4, seed=1), select_shots(targets, 4, seed=1)
    np.testing.assert_array_equal(first, again)
    others = {tuple(select_shots(targets, 4, seed=s)) for s in range(2, 8)}
    assert len(others | {tuple(first)}) > 1  # the seed matters: not always the first four positives


def test_no_shots_means_every_known_row() -> None:
    targets = np.array([1, 0, 0, 1], dtype=np.float32)
    np.testing.assert_array_equal(select_shots(targets, None, seed=0), [0, 1, 2, 3])


def test_uncertain_and_unmentioned_reports_are_left_out() -> None:
    rows = known_rows(_split([1, NAN, 0, 1, NAN, 0, 0]), "pneumothorax")
    assert rows.rows.uids == ["uid000", "uid002", "uid003", "uid005", "uid006"]
    assert (rows.positives, rows.negatives) == (2, 3)


def test_training_rows_refuse_a_finding_with_no_positive_or_too_few_for_the_shots() -> None:
    with pytest.raises(SourceError, match="no image in the train split has a report stating pneumothorax present"):
        training_rows(_split([0, 0, NAN]), "pneumothorax", None, 0)
    with pytest.raises(SourceError, match=r"--shots 3 asked for more pneumothorax positives .* \(2\)"):
        training_rows(_split([1, 0, 1, 0]), "pneumothorax", 3, 0)
    few = training_rows(_split([1, 0, 1, 0, 1]), "pneumothorax", 2, 0)
    assert (few.positives, few.negatives) == (2, 2)


def test_evaluation_rows_need_both_classes() -> None:
    with pytest.raises(SourceError, match="the test split has no negative image for pneumothorax"):
        evaluation_rows(_split([1, 1, NAN], "test"), "pneumothorax")
    with pytest.raises(SourceError, match="the test split has no positive image for pneumothorax"):
        evaluation_rows(_split([0, NAN], "test"), "pneumothorax")
