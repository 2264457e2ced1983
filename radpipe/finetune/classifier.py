"""The fine-tuned classifier: the foundation image encoder and its projection, and a linear head on the embedding.

Training never runs the frozen part of the encoder twice: its output is computed once per image (the
embedding in frozen mode, the last stage's input in partial mode) and the classifier maps that to a logit.
Serving runs the whole encoder (`Embedder.embed_images`) and the same head; a test holds the two equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radpipe.finetune.config import Mode
from radpipe.model.clip import ContrastiveModel
from radpipe.model.image import ImageEncoder


def last_stage(encoder: ImageEncoder) -> nn.Module:
    """What partial mode unfreezes: the ResNet's fourth stage, or the ViT's last transformer block."""
    net: Any = encoder.net  # the ResNet's or ViT's stages by name
    return net.layer4 if encoder.cfg.arch == "resnet" else net.blocks[-1]


class FindingClassifier(nn.Module):
    """Precomputed features to one logit per image: frozen mode reads embeddings, partial mode last-stage inputs."""

    def __init__(self, model: ContrastiveModel, mode: Mode) -> None:
        super().__init__()
        self.mode = mode
        self.model = model
        self.head = nn.Linear(model.cfg.embed_dim, 1)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for parameter in self.encoder_parameters():
            parameter.requires_grad_(True)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The foundation weights this mode trains: none, or the last stage and the projection after it."""
        if self.mode == "frozen":
            return []
        return [*last_stage(self.model.image_encoder).parameters(), *self.model.image_projection.parameters()]

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The unit-norm embedding, exactly as `ContrastiveModel.encode_image` ends."""
        if self.mode == "frozen":
            return features
        encoder = self.model.image_encoder
        net: Any = encoder.net
        x = last_stage(encoder)(features)
        x = torch.flatten(net.avgpool(x), 1) if encoder.cfg.arch == "resnet" else net.norm(x).mean(dim=1)
        return F.normalize(self.model.image_projection(x), dim=-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(features)).squeeze(-1)


@torch.no_grad()
def last_stage_inputs(model: ContrastiveModel, images: torch.Tensor) -> torch.Tensor:
    """What the last stage receives for model inputs [B, 1, H, W]; the encoder runs whole, as its own code."""
    captured: list[torch.Tensor] = []

    def capture(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured.append(args[0].detach())

    hook = last_stage(model.image_encoder).register_forward_pre_hook(capture)
    try:
        model.encode_image(images)
    finally:
        hook.remove()
    return captured[0]


@torch.no_grad()
def probabilities(head: nn.Linear, embeddings: np.ndarray) -> np.ndarray:
    """P(finding) per unit-norm image embedding [N, embed_dim]."""
    weight = head.weight
    logits = head(torch.from_numpy(np.asarray(embeddings, np.float32)).to(weight.device)).squeeze(-1)
    return torch.sigmoid(logits).double().cpu().numpy()
