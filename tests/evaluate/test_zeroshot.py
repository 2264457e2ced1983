from __future__ import annotations

import numpy as np

from radpipe.evaluate.prompts import PROMPTS
from radpipe.evaluate.zeroshot import zeroshot_aurocs


def test_images_closer_to_the_positive_prompt_score_higher() -> None:
    positive, negative = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    images = np.array([[1.0, 0.0], [0.9, 0.1], [0.1, 0.9], [0.0, 1.0], [0.5, 0.5]])
    labels = {"pleural_effusion": np.array([1, 1, 0, 0, -1]), "edema": np.array([np.nan] * 5)}
    prompts = {"pleural_effusion": (positive, negative), "edema": (positive, negative)}
    result = zeroshot_aurocs(images, labels, prompts, resamples=100)
    assert set(result) == {"pleural_effusion"}  # edema: never mentioned, no AUROC
    assert result["pleural_effusion"].value == 1.0
    swapped = zeroshot_aurocs(images, labels, {"pleural_effusion": (negative, positive)}, resamples=100)
    assert swapped["pleural_effusion"].value == 0.0


def test_every_prompt_pair_is_a_distinct_assertion_and_denial() -> None:
    from radpipe.reports.label_rules import LABELS

    for label, (positive, negative) in PROMPTS.items():
        assert label in LABELS
        assert positive != negative and positive.strip() and negative.strip()
