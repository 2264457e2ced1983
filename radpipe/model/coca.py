"""The generative side: a report decoder cross-attending to image tokens, and the model that adds it (CoCa).

`build_model` is the one constructor every caller uses: a contrastive encoder for `objective: contrastive`,
the encoder plus this decoder for `captioning` and `coca`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from radpipe.model.clip import MAX_LOGIT_SCALE, ContrastiveModel, contrastive_loss
from radpipe.model.config import DecoderConfig, ModelConfig
from radpipe.model.text import trailing_padding_dropped


class ReportDecoder(nn.Module):
    """A pre-norm causal transformer over report tokens; every layer cross-attends to the image tokens."""

    def __init__(self, cfg: DecoderConfig, vocab_size: int, image_features: int) -> None:
        super().__init__()
        self.max_length = cfg.max_length
        self.token_embedding = nn.Embedding(vocab_size, cfg.width, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.zeros(cfg.max_length, cfg.width))
        nn.init.normal_(self.position_embedding, std=0.01)
        self.image_projection = nn.Linear(image_features, cfg.width)
        self.image_norm = nn.LayerNorm(cfg.width)
        layer = nn.TransformerDecoderLayer(
            cfg.width, cfg.num_heads, dim_feedforward=cfg.width * 4, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerDecoder(layer, cfg.num_layers)
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, vocab_size, bias=False)

    def memory(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """Image tokens [B, N, image_features] in the decoder's width: computed once per image when generating."""
        return self.image_norm(self.image_projection(image_tokens))

    def forward(self, memory: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits [B, L, vocab] for the ids [B, L] so far. Positions after [EOS] hold padding; the
        causal mask keeps every real position from seeing them, and the loss ignores them."""
        length = ids.shape[1]
        x = self.token_embedding(ids) + self.position_embedding[:length]
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=ids.device, dtype=x.dtype)
        x = self.transformer(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.head(self.norm(x))


class CoCaModel(ContrastiveModel):
    """The contrastive encoder plus a report decoder on the image encoder's tokens (open_clip's CoCa)."""

    def __init__(
        self, cfg: ModelConfig, vocab_size: int, decoder_vocab_size: int, gradient_checkpointing: bool = False
    ) -> None:
        super().__init__(cfg, vocab_size, gradient_checkpointing)
        self.decoder = ReportDecoder(cfg.decoder, decoder_vocab_size, self.image_encoder.out_features)

    def forward(  # type: ignore[override]
        self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image embedding, text embedding, logit scale, next-token logits of target[:, :-1]): the image
        encoder runs once for both losses."""
        tokens = self.image_encoder.tokens(images)
        image_emb = F.normalize(self.image_projection(tokens.mean(dim=1)), dim=-1)
        text_emb = self.encode_text(ids, mask)
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        return image_emb, text_emb, scale, self.decoder(self.decoder.memory(tokens), target[:, :-1])

    def image_memory(self, images: torch.Tensor) -> torch.Tensor:
        """What generation attends to, for a batch of model inputs."""
        return self.decoder.memory(self.image_encoder.tokens(images))


def caption_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each next token of the target ([BOS] excluded), padding (id 0) ignored."""
    return F.cross_entropy(logits.float().flatten(0, 1), target[:, 1:].long().flatten(), ignore_index=0)


Embeddings = tuple[torch.Tensor, torch.Tensor]  # (image, text) embeddings of one batch


def objective_loss(
    model: nn.Module, cfg: ModelConfig, batch: dict[str, torch.Tensor], negatives: Embeddings | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective's loss on one batch, and its parts (for logging). `model` may be wrapped in DDP: it is
    called, not unwrapped, so gradients synchronise. `negatives`: see `contrastive_loss`.

    The parts are detached tensors (no device sync unless someone reads them): the losses, and the batch's
    `image_embedding` and `text_embedding` (another modality's negatives later). Trailing padding is dropped
    first (one host sync on a GPU)."""
    ids, mask, hard = batch["ids"], batch["mask"], "swap_ids" in batch
    if hard:  # examination-swapped texts: encoded in the same forward (DDP sees each module once a step)
        ids, mask = torch.cat([ids, batch["swap_ids"]]), torch.cat([mask, batch["swap_mask"]])
    ids, mask = trailing_padding_dropped(ids, mask, real=mask != 0)
    if not cfg.writes_reports:
        image_emb, text_emb, scale = model(batch["image"], ids, mask)
        text_emb, swapped = _split_hard(text_emb, len(batch["image"]) if hard else None)
        loss = contrastive_loss(image_emb.float(), text_emb.float(), scale.float(), negatives, swapped)
        return loss, _embeddings(image_emb, text_emb)
    (target,) = trailing_padding_dropped(batch["target"], real=batch["target"] != 0)
    image_emb, text_emb, scale, logits = model(batch["image"], ids, mask, target)
    text_emb, swapped = _split_hard(text_emb, len(batch["image"]) if hard else None)
    clip_weight, caption_weight = cfg.loss_weights
    captioning = caption_loss(logits, target)
    parts = {"train_caption_loss": captioning.detach()} | _embeddings(image_emb, text_emb)
    loss = caption_weight * captioning
    if clip_weight:
        contrastive = contrastive_loss(image_emb.float(), text_emb.float(), scale.float(), negatives, swapped)
        parts["train_contrastive_loss"] = contrastive.detach()
        loss = loss + clip_weight * contrastive
    return loss, parts


def _split_hard(text_emb: torch.Tensor, rows: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the batch's report embeddings, the examination-swapped ones after them, if any)."""
    return (text_emb, None) if rows is None else (text_emb[:rows], text_emb[rows:])


def _embeddings(image_emb: torch.Tensor, text_emb: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"image_embedding": image_emb.detach(), "text_embedding": text_emb.detach()}


def build_model(
    cfg: ModelConfig, vocab_size: int, decoder_vocab_size: int | None = None, gradient_checkpointing: bool = False
) -> ContrastiveModel:
    """The model an objective trains: a CoCaModel when it writes reports (needs the decoder's vocabulary)."""
    if not cfg.writes_reports:
        return ContrastiveModel(cfg, vocab_size, gradient_checkpointing)
    if decoder_vocab_size is None:
        raise ValueError(f"objective {cfg.objective} needs the report decoder's vocabulary size")
    return CoCaModel(cfg, vocab_size, decoder_vocab_size, gradient_checkpointing)
