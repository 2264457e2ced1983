from __future__ import annotations

import numpy as np
import pytest

from radpipe.evaluate.retrieval import retrieval_metrics


def test_perfect_pairs_are_found_first() -> None:
    emb = np.eye(20)
    metrics = retrieval_metrics(emb, emb)
    assert metrics["retrieval_image_to_text_recall_at_1"] == 1.0
    assert metrics["retrieval_text_to_image_recall_at_5"] == 1.0
    assert metrics["retrieval_image_to_text_median_rank"] == 1.0


def test_unrelated_embeddings_retrieve_at_chance() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(400, 32))
    texts = rng.normal(size=(400, 32))
    metrics = retrieval_metrics(images, texts)
    assert metrics["retrieval_image_to_text_recall_at_5"] == pytest.approx(5 / 400, abs=0.015)
    assert metrics["retrieval_text_to_image_median_rank"] == pytest.approx(200, rel=0.2)
