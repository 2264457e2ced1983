"""The image-report contrastive model (CLIP/ConVIRT-style) and its symmetric loss."""

from __future__ import annotations

import math

import torch
import torch.distributed.nn  # autograd-aware collectives, for global negatives under DDP
import torch.nn.functional as F
from torch import nn

from radpipe.model.config import ModelConfig
from radpipe.model.image import ImageEncoder
from radpipe.model.text import build_text_encoder

# CLIP clamps the learnt inverse temperature at 100: beyond it training becomes unstable.
MAX_LOGIT_SCALE = math.log(100.0)


class ContrastiveModel(nn.Module):
    """Two encoders projected into one normalised embedding space, with a learnable temperature."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg.image, gradient_checkpointing)
        self.text_encoder = build_text_encoder(cfg.text, vocab_size)
        self.image_projection = nn.Linear(self.image_encoder.out_features, cfg.embed_dim, bias=False)
        self.text_projection = nn.Linear(int(self.text_encoder.out_features), cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_projection(self.text_encoder(ids, mask)), dim=-1)

    def forward(
        self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        return self.encode_image(images), self.encode_text(ids, mask), scale


def contrastive_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    scale: torch.Tensor,
    negatives: tuple[torch.Tensor, torch.Tensor] | None = None,
    hard_texts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE: each image must pick its own report among the batch's, and each report its image.

    Under DDP the embeddings of every worker are gathered (with gradients), so negatives span the global batch.
    `negatives` (image and text embeddings, detached, of another modality's batch) are added to every row's
    candidates: modality-pure batches never set a radiograph against a CT report otherwise, and zero-shot
    modality prompts would have nothing to go on. `hard_texts` (with gradients, one per local image) are more
    report candidates for the images: each image's own report under another modality's examination line.
    """
    image_all, text_all, offset = _gather(image_emb), _gather(text_emb), _rank_offset(image_emb.shape[0])
    if negatives is not None:
        image_all = torch.cat([image_all, negatives[0].to(image_all.dtype)])
        text_all = torch.cat([text_all, negatives[1].to(text_all.dtype)])
    if hard_texts is not None:
        text_all = torch.cat([text_all, hard_texts.to(text_all.dtype)])
    logits_per_image = scale * image_emb.float() @ text_all.float().T
    logits_per_text = scale * text_emb.float() @ image_all.float().T
    targets = torch.arange(image_emb.shape[0], device=image_emb.device) + offset
    return (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets)) / 2


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _gather(x: torch.Tensor) -> torch.Tensor:
    if not _distributed() or torch.distributed.get_world_size() == 1:
        return x
    return torch.cat(torch.distributed.nn.all_gather(x.contiguous()), dim=0)


def _rank_offset(local_batch: int) -> int:
    # Every worker gets equal batch sizes (drop_last), so a worker's rows start at rank * batch.
    return torch.distributed.get_rank() * local_batch if _distributed() else 0
