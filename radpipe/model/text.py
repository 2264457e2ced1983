"""Report text: a tokenizer trained on the dataset's own reports, and a small transformer encoder.

A local Hugging Face checkpoint directory can replace both (no hub access at run time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from torch import nn

from radpipe.errors import ConfigError
from radpipe.model.config import TextEncoderConfig

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    min_report_frequency: int = 1,
    normalizer: Any = None,
    pre_tokenizer: Any = None,
) -> Tokenizer:
    """A WordPiece tokenizer over the reports' most frequent words; [PAD] is id 0. Lower-cased and split
    BERT's way unless another `normalizer` / `pre_tokenizer` is given.

    Built by counting, not with `tokenizers`' trainers: those break frequency ties in hash order, so two
    runs on the same reports gave different vocabularies. Every character seen stays in the vocabulary
    (alone and as a "##" continuation), so a rare or misspelt word splits into pieces, never into [UNK].
    A word counts once per distinct text: a study's several images share one report, which must not count
    as several reports towards `min_report_frequency`.
    """
    normalizer = normalizer or normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizer or pre_tokenizers.BertPreTokenizer()
    texts = sorted(set(texts))
    counts: Counter[str] = Counter()
    reports: Counter[str] = Counter()  # in how many reports each word occurs
    for text in texts:
        words = [word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]
        counts.update(words)
        reports.update(set(words))
    characters = sorted({c for word in counts for c in word})
    vocab = [PAD, UNK, CLS, *characters, *(f"##{c}" for c in characters)]
    known = set(vocab)
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(vocab) >= vocab_size:
            break
        if word not in known and reports[word] >= min_report_frequency:
            vocab.append(word)
            known.add(word)
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token=UNK))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    return tokenizer


class TextTokenizer:
    """Turns strings into fixed-length id and mask arrays; the same object at training and in `predict`."""

    def __init__(self, cfg: TextEncoderConfig, tokenizer_json: str | None = None) -> None:
        self.max_length = cfg.max_length
        self._hf: Any = None
        self._tok: Tokenizer | None = None
        if cfg.checkpoint:
            self._hf = _hf_module(cfg.checkpoint, "AutoTokenizer")
        elif tokenizer_json is None:
            raise ConfigError("a trained tokenizer is required when no text checkpoint is configured")
        else:
            self._tok = Tokenizer.from_str(tokenizer_json)
            self._tok.enable_truncation(self.max_length)
            self._tok.enable_padding(length=self.max_length, pad_id=0, pad_token=PAD)

    @property
    def vocab_size(self) -> int:
        if self._hf is not None:
            return int(self._hf.vocab_size)
        assert self._tok is not None
        return self._tok.get_vocab_size()

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Returns (ids, mask), both int32 [len(texts), max_length]."""
        if self._hf is not None:
            out = self._hf(
                texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="np"
            )
            return out["input_ids"].astype(np.int32), out["attention_mask"].astype(np.int32)
        assert self._tok is not None
        encoded = self._tok.encode_batch([f"{CLS} {t}" for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int32)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int32)
        return ids, mask


class TextEncoder(nn.Module):
    """A small pre-norm transformer over report tokens, mean-pooled over non-padding positions."""

    def __init__(self, cfg: TextEncoderConfig, vocab_size: int) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, cfg.width, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.zeros(cfg.max_length, cfg.width))
        nn.init.normal_(self.position_embedding, std=0.01)
        layer = nn.TransformerEncoderLayer(
            cfg.width, cfg.num_heads, dim_feedforward=cfg.width * 4, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.out_features = cfg.width

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        x = self.norm(self.transformer(x, src_key_padding_mask=mask == 0))
        return masked_mean(x, mask)


class PretrainedTextEncoder(nn.Module):
    """A local Hugging Face encoder checkpoint (BERT-style), mean-pooled."""

    def __init__(self, checkpoint: str) -> None:
        super().__init__()
        self.model = _hf_module(checkpoint, "AutoModel")
        self.out_features = int(self.model.config.hidden_size)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return masked_mean(hidden, mask)


def build_text_encoder(cfg: TextEncoderConfig, vocab_size: int) -> TextEncoder | PretrainedTextEncoder:
    return PretrainedTextEncoder(cfg.checkpoint) if cfg.checkpoint else TextEncoder(cfg, vocab_size)


def trailing_padding_dropped(*columns: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`columns` [B, L, ...] without the last positions where `real` [B, L] is false in every row.

    Tokenizers pad every text to the maximum length; a batch's texts are usually much shorter (the demo's report
    targets: 71 of the decoder's 160 positions on average). A padded position changes nothing a model computes
    for a real one (masked out of attention and pooling, after every real token under a causal mask, ignored by
    the loss), so dropping the ones at the end gives the same result for less work. One host sync on a GPU."""
    positions = torch.arange(1, real.shape[1] + 1, device=real.device)
    keep = max(int((real.any(dim=0) * positions).max()), 1)
    return tuple(column[:, :keep] for column in columns)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _hf_module(checkpoint: str, kind: str) -> Any:
    if not Path(checkpoint).is_dir():
        raise ConfigError(f"text checkpoint must be a local directory (no hub access): {checkpoint}")
    try:
        import transformers
    except ImportError:
        raise ConfigError("a text checkpoint needs the transformers package: pip install transformers") from None
    return getattr(transformers, kind).from_pretrained(checkpoint, local_files_only=True)
