"""The classifier's training path (precomputed last-stage input) equals the serving path (the whole encoder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radpipe.finetune.classifier import FindingClassifier, last_stage, last_stage_inputs, probabilities
from radpipe.model.clip import ContrastiveModel
from radpipe.model.config import ImageEncoderConfig, ModelConfig, TextEncoderConfig

TEXT = TextEncoderConfig(vocab_size=200, max_length=16, width=32, num_layers=1, num_heads=2)


def _model(image: ImageEncoderConfig) -> ContrastiveModel:
    torch.manual_seed(0)
    return ContrastiveModel(ModelConfig(embed_dim=16, image=image, text=TEXT), vocab_size=200).eval()


ENCODERS = [
    ImageEncoderConfig(input_size=64, resnet_widths=(8, 16, 32, 64)),
    ImageEncoderConfig(arch="vit", input_size=64, patch_size=16, hidden_size=64, num_layers=2, num_heads=4),
]


@pytest.mark.parametrize("image", ENCODERS, ids=["resnet", "vit"])
def test_partial_path_from_last_stage_input_equals_the_encoder(image: ImageEncoderConfig) -> None:
    model = _model(image)
    images = torch.rand(3, 1, 64, 64)
    classifier = FindingClassifier(model, "partial")
    with torch.no_grad():
        expected = model.encode_image(images)
        got = classifier.embed(last_stage_inputs(model, images))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("image", ENCODERS, ids=["resnet", "vit"])
def test_partial_mode_trains_the_last_stage_and_projection_only(image: ImageEncoderConfig) -> None:
    model = _model(image)
    classifier = FindingClassifier(model, "partial")
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    expected = {id(p) for p in [*last_stage(model.image_encoder).parameters(), *model.image_projection.parameters()]}
    assert trainable == expected and trainable
    assert all(p.requires_grad for p in classifier.head.parameters())


def test_frozen_mode_trains_the_head_only_and_reads_embeddings() -> None:
    model = _model(ENCODERS[0])
    classifier = FindingClassifier(model, "frozen")
    assert not any(p.requires_grad for p in model.parameters())
    embeddings = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    with torch.no_grad():
        logits = classifier(embeddings)
    np.testing.assert_allclose(
        probabilities(classifier.head, embeddings.numpy()), torch.sigmoid(logits).numpy(), rtol=1e-6
    )
