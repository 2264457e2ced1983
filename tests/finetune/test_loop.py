"""The training loop: learns a separable finding, balances a rare one, and repeats itself for a seed."""

from __future__ import annotations

import numpy as np
import torch

from radpipe.evaluate.metrics import auroc
from radpipe.finetune.classifier import last_stage_inputs, probabilities
from radpipe.finetune.config import finetune_config
from radpipe.finetune.loop import auroc_metrics, train_classifier
from radpipe.model.clip import ContrastiveModel
from radpipe.model.config import ImageEncoderConfig, ModelConfig, TextEncoderConfig

DIM = 16


def _model() -> ContrastiveModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        embed_dim=DIM,
        image=ImageEncoderConfig(input_size=64, resnet_widths=(8, 16, 32, 64)),
        text=TextEncoderConfig(vocab_size=200, max_length=16, width=32, num_layers=1, num_heads=2),
    )
    return ContrastiveModel(cfg, vocab_size=200).eval()


def _embeddings(n: int, positives: int, seed: int, margin: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors where the finding shifts one random direction: linearly separable, as a good encoder makes it."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).normal(size=DIM)
    direction /= np.linalg.norm(direction)
    targets = np.zeros(n, np.float32)
    targets[rng.choice(n, positives, replace=False)] = 1
    x = rng.normal(size=(n, DIM)) + margin * 4 * np.where(targets[:, None] == 1, 1, -1) * direction
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), targets


def test_head_on_separable_embeddings_reaches_high_auroc() -> None:
    train_x, train_y = _embeddings(200, 60, seed=1)
    test_x, test_y = _embeddings(200, 60, seed=2)
    classifier, losses = train_classifier(_model(), torch.from_numpy(train_x), train_y, finetune_config(epochs=60))
    assert losses[-1] < losses[0]
    metrics = auroc_metrics(test_y, probabilities(classifier.head, test_x), resamples=200, seed=0)
    assert metrics["finetune_auroc"] > 0.97
    assert metrics["finetune_auroc_low"] <= metrics["finetune_auroc"] <= metrics["finetune_auroc_high"]


def test_a_rare_finding_is_not_ignored() -> None:
    # 5 positives in 300: an unbalanced loss is minimised by calling every image negative.
    train_x, train_y = _embeddings(300, 5, seed=3)
    test_x, test_y = _embeddings(300, 30, seed=4)
    classifier, _ = train_classifier(_model(), torch.from_numpy(train_x), train_y, finetune_config(epochs=60))
    scores = probabilities(classifier.head, test_x)
    assert auroc(test_y, scores) > 0.9
    assert scores[test_y == 1].mean() > 0.5 > scores[test_y == 0].mean()


def test_training_is_reproducible_for_a_seed_and_the_seed_matters() -> None:
    x, y = _embeddings(80, 20, seed=5, margin=0.1)
    features = torch.from_numpy(x)

    def head_weights(seed: int) -> np.ndarray:
        classifier, _ = train_classifier(_model(), features, y, finetune_config(epochs=5, batch_size=16, seed=seed))
        return classifier.head.weight.detach().numpy().copy()

    np.testing.assert_array_equal(head_weights(0), head_weights(0))
    assert not np.array_equal(head_weights(0), head_weights(1))


def test_partial_mode_changes_the_last_stage_and_leaves_the_rest_alone() -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(12, 1, 64, 64)
    y = np.array([1, 0] * 6, np.float32)
    train_classifier(model, last_stage_inputs(model, images), y, finetune_config(mode="partial", epochs=3))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("image_encoder.net.layer4.", "image_projection.")) for k in changed)
    assert any(k.startswith("image_projection.") for k in changed)
