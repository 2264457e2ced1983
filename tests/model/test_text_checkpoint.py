"""A local Hugging Face checkpoint directory replaces the built-in text encoder and tokenizer (no hub)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from radpipe.errors import ConfigError
from radpipe.model.clip import ContrastiveModel
from radpipe.model.config import ImageEncoderConfig, ModelConfig, TextEncoderConfig
from radpipe.model.text import TextTokenizer, train_tokenizer

transformers = pytest.importorskip("transformers")

REPORTS = ["No pleural effusion.", "Large left pleural effusion.", "Cardiomegaly.", "Clear lungs."] * 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bert-tiny")
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(REPORTS, 200), pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]"
    )
    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_checkpoint_encodes_text_into_the_shared_space(checkpoint: Path) -> None:
    cfg = ModelConfig(
        embed_dim=16,
        image=ImageEncoderConfig(input_size=32, resnet_widths=(8, 8, 8, 8)),
        text=TextEncoderConfig(checkpoint=str(checkpoint), max_length=16),
    )
    tokenizer = TextTokenizer(cfg.text)
    model = ContrastiveModel(cfg, tokenizer.vocab_size).eval()
    ids, mask = tokenizer(["Large left pleural effusion.", "Clear lungs."])
    assert ids.shape == (2, 16)
    with torch.no_grad():
        embedded = model.encode_text(torch.from_numpy(ids).long(), torch.from_numpy(mask).long())
    assert embedded.shape == (2, 16)
    np.testing.assert_allclose(embedded.norm(dim=-1).numpy(), 1.0, rtol=1e-5)


def test_checkpoint_must_be_a_local_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="local directory"):
        TextTokenizer(TextEncoderConfig(checkpoint="bert-base-uncased"))
