"""Image encoders (MONAI's ResNet and ViT, in radpipe.model.networks): one code path for 2D radiographs and 3D
volumes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from radpipe.model.config import ImageEncoderConfig
from radpipe.model.depth_one import accept_depth_one
from radpipe.model.networks import ResNet, ViT

# Inputs arrive in [0, 1]; centring them helps every architecture and keeps `predict` and training identical.
_MEAN, _STD = 0.5, 0.25


class ImageEncoder(nn.Module):
    """Maps a batch [B, channels, *spatial] in [0, 1] (radiographs: 1 channel; volumes: 3) to [B, out_features].

    A 3D encoder with `radiographs` also takes radiographs [B, 1, H, W]: as volumes of depth 1, their grey
    channel standing for the volume's channels repeated (radpipe.model.depth_one)."""

    def __init__(self, cfg: ImageEncoderConfig, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.gradient_checkpointing = gradient_checkpointing
        self.net: nn.Module
        if cfg.arch == "resnet":
            self.net = ResNet(
                layers=list(cfg.resnet_layers),
                block_inplanes=list(cfg.resnet_widths),
                spatial_dims=cfg.spatial_dims,
                n_input_channels=cfg.channels,
                stem_stride=cfg.resnet_stem_stride,
            )
            self.out_features = cfg.resnet_widths[-1]
            if cfg.radiographs:
                accept_depth_one(self.net)
        else:
            self.net = ViT(
                in_channels=cfg.channels,
                img_size=cfg.input_size,
                patch_size=cfg.patch_size,
                hidden_size=cfg.hidden_size,
                mlp_dim=cfg.hidden_size * 4,
                num_layers=cfg.num_layers,
                num_heads=cfg.num_heads,
                spatial_dims=cfg.spatial_dims,
            )
            self.out_features = cfg.hidden_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tokens(images).mean(dim=1)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's features as a token sequence [B, N, out_features] (a ResNet's spatial positions,
        a ViT's patches): what a report decoder attends to. Their mean is the pooled feature `forward` gives."""
        x = (images - _MEAN) / _STD
        if self.cfg.arch == "resnet":
            return self._resnet(x)
        return self._vit(x)

    def _stage(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training:
            return checkpoint(module, x, use_reentrant=False)
        return module(x)

    def _resnet(self, x: torch.Tensor) -> torch.Tensor:
        net: Any = self.net  # the ResNet: its stages by name
        x = net.act(net.bn1(net.conv1(x)))
        x = net.maxpool(x)
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4)[: len(self.cfg.resnet_layers)]:
            x = self._stage(stage, x)
        return torch.flatten(x, 2).transpose(1, 2)  # [B, C, *spatial] -> [B, positions, C]

    def _vit(self, x: torch.Tensor) -> torch.Tensor:
        net: Any = self.net
        x = net.patch_embedding(x)
        for block in net.blocks:
            x = self._stage(block, x)
        return net.norm(x)
