"""The contrastive model: shapes in 2D and 3D, the loss, the tokenizer, and the embedder's preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from radpipe.model.clip import ContrastiveModel, contrastive_loss
from radpipe.model.config import ImageEncoderConfig, ModelConfig, TextEncoderConfig
from radpipe.model.image import ImageEncoder
from radpipe.model.text import TextTokenizer, train_tokenizer

REPORTS = [
    "Large right pleural effusion. Heart size normal.",
    "No pleural effusion or pneumothorax. Clear lungs.",
    "Cardiomegaly with pulmonary edema.",
    "Left apical pneumothorax, small.",
] * 5


@pytest.mark.parametrize(
    "cfg",
    [
        ImageEncoderConfig(input_size=64, resnet_widths=(8, 16, 32, 64)),
        ImageEncoderConfig(spatial_dims=3, input_size=32, resnet_widths=(8, 16, 32, 64)),
        ImageEncoderConfig(arch="vit", input_size=64, patch_size=16, hidden_size=64, num_layers=2, num_heads=4),
        ImageEncoderConfig(
            arch="vit", spatial_dims=3, input_size=32, patch_size=8, hidden_size=64, num_layers=2, num_heads=4
        ),
    ],
    ids=["resnet-2d", "resnet-3d", "vit-2d", "vit-3d"],
)
def test_one_encoder_code_path_for_2d_and_3d(cfg: ImageEncoderConfig) -> None:
    encoder = ImageEncoder(cfg)
    images = torch.rand((3, cfg.channels) + (cfg.input_size,) * cfg.spatial_dims)  # volumes: 3 window channels
    features = encoder(images)
    assert features.shape == (3, encoder.out_features)


def test_gradient_checkpointing_changes_memory_not_results() -> None:
    cfg = ImageEncoderConfig(input_size=64, resnet_widths=(8, 16, 32, 64))
    torch.manual_seed(0)
    plain = ImageEncoder(cfg)
    checkpointed = ImageEncoder(cfg, gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    images = torch.rand(2, 1, 64, 64)
    plain(images).sum().backward()
    checkpointed(images).sum().backward()
    for a, b in zip(plain.parameters(), checkpointed.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_loss_is_symmetric_and_rewards_matching_pairs() -> None:
    torch.manual_seed(1)
    images = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    texts = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(10.0)
    torch.testing.assert_close(contrastive_loss(images, texts, scale), contrastive_loss(texts, images, scale))
    matched = contrastive_loss(images, images.clone(), scale)
    assert matched < contrastive_loss(images, texts, scale)
    # Random embeddings at temperature 1 sit near log(batch): the chance level.
    assert contrastive_loss(images, texts, torch.tensor(1.0)).item() == pytest.approx(math.log(8), abs=0.3)


def test_tokenizer_learns_report_words_and_pads_to_length() -> None:
    cfg = TextEncoderConfig(vocab_size=200, max_length=12)
    tokenizer = TextTokenizer(cfg, train_tokenizer(REPORTS, cfg.vocab_size).to_str())
    ids, mask = tokenizer(["pleural effusion", "cardiomegaly " * 40])
    assert ids.shape == mask.shape == (2, 12)
    assert mask[0].sum() < 12 and ids[0][mask[0] == 0].tolist() == [0] * int((mask[0] == 0).sum())
    assert mask[1].sum() == 12  # truncated, not overflowing
    assert tokenizer.vocab_size <= 200


def test_a_word_from_too_few_reports_never_enters_the_vocabulary() -> None:
    # A name the scrubber missed sits in one patient's reports; the tokenizer ships with the model.
    reports = [*REPORTS, "Compared with the study read by Dr Quixotic, effusion unchanged."]
    tokenizer = train_tokenizer(reports, 500, min_report_frequency=3)
    assert "quixotic" not in tokenizer.get_vocab()
    assert "effusion" in tokenizer.get_vocab()
    assert "[UNK]" not in tokenizer.encode("quixotic").tokens  # still encodable, as characters


def test_tokenizer_is_reproducible_and_splits_unseen_words() -> None:
    first, second = train_tokenizer(REPORTS, 200), train_tokenizer(REPORTS, 200)
    assert first.get_vocab() == second.get_vocab()
    pieces = first.encode("pneumomediastinum").tokens
    assert "[UNK]" not in pieces and len(pieces) > 1
    assert first.encode("pleural effusion").tokens == ["pleural", "effusion"]


def test_model_embeddings_are_unit_vectors_in_one_space() -> None:
    cfg = ModelConfig(
        embed_dim=32,
        image=ImageEncoderConfig(input_size=64, resnet_widths=(8, 16, 32, 64)),
        text=TextEncoderConfig(vocab_size=200, max_length=16, width=32, num_layers=1, num_heads=2),
    )
    tokenizer = TextTokenizer(cfg.text, train_tokenizer(REPORTS, 200).to_str())
    model = ContrastiveModel(cfg, tokenizer.vocab_size).eval()
    ids, mask = tokenizer(REPORTS[:3])
    image_emb, text_emb, scale = model(torch.rand(3, 1, 64, 64), torch.from_numpy(ids).long(), torch.from_numpy(mask))
    assert image_emb.shape == text_emb.shape == (3, 32)
    np.testing.assert_allclose(image_emb.norm(dim=-1).detach().numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(text_emb.norm(dim=-1).detach().numpy(), 1.0, rtol=1e-5)
    assert float(scale.detach()) == pytest.approx(1 / cfg.init_temperature, rel=1e-4)


def test_padding_does_not_change_a_text_embedding() -> None:
    cfg = TextEncoderConfig(vocab_size=200, max_length=16, width=32, num_layers=1, num_heads=2)
    short = TextTokenizer(cfg, train_tokenizer(REPORTS, 200).to_str())
    longer_cfg = cfg.model_copy(update={"max_length": 32})
    longer = TextTokenizer(longer_cfg, train_tokenizer(REPORTS, 200).to_str())
    from radpipe.model.text import TextEncoder

    torch.manual_seed(0)
    encoder = TextEncoder(longer_cfg, short.vocab_size).eval()
    a = encoder(*(torch.from_numpy(x).long() for x in short(["small left pleural effusion"])))
    b = encoder(*(torch.from_numpy(x).long() for x in longer(["small left pleural effusion"])))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
