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


def test_a_prompt_per_image_scores_each_image_with_its_own_pair() -> None:
    """A model of radiographs and volumes: each row's prompts are read after its own examination line."""
    images = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    labels = {"pleural_effusion": np.array([1, 0, 0, 1])}
    # Rows 0-1 (CT) say "present" along x, rows 2-3 (MR) along y: one shared pair would score AUROC 0.5.
    positive = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    negative = positive[:, ::-1].copy()
    result = zeroshot_aurocs(images, labels, {"pleural_effusion": (positive, negative)}, resamples=50)
    assert result["pleural_effusion"].value == 1.0
    shared = zeroshot_aurocs(images, labels, {"pleural_effusion": (positive[0], negative[0])}, resamples=50)
    assert shared["pleural_effusion"].value == 0.5


class _WordEmbedder:
    """Texts to fixed vectors by what they start with (the prompts' own embedding is not under test here)."""

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return np.array([[t.startswith("MR"), t.startswith("CT"), len(t)] for t in texts], dtype=np.float32)


def test_finding_prompts_follow_each_rows_examination_line() -> None:
    from radpipe.evaluate.data import LabelledSplit
    from radpipe.evaluate.run import finding_prompts

    kinds, body_parts = ["CT", "MR", "CT"], ["chest", "head", "chest"]
    rows = LabelledSplit("test", ["a", "b", "c"], ["s1", "s2", "s3"], ["", "", ""], {}, True, kinds, body_parts)
    prompts = finding_prompts(_WordEmbedder(), rows)  # type: ignore[arg-type]
    positive, negative = prompts["pleural_effusion"]
    assert positive.shape == (3, 3)
    assert positive[:, :2].tolist() == [[0, 1], [1, 0], [0, 1]]  # CT, MR, CT lines
    assert positive[0].tolist() == positive[2].tolist() != negative[0].tolist()
    single = finding_prompts(_WordEmbedder())  # type: ignore[arg-type]
    assert single["pleural_effusion"][0].shape == (3,)
