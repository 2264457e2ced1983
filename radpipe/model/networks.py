"""The image encoders' networks in plain PyTorch: MONAI's ResNet (basic blocks, shortcut B) and ViT (conv patches,
learnable positions), module for module, so their state dicts, initial weights and outputs are MONAI's.

Why not import them from MONAI: `import monai` loads every MONAI subpackage (transforms, apps, a Hugging Face BERT
for TransCHeX, MLflow handlers, matplotlib): 7-9 s a process on this machine, paid by every Ray Train worker of every
run, by every process that loads a registered model, before any work. These are the two networks radpipe builds;
tests/model/test_networks.py holds them to MONAI's (same parameter names, same weights from the same seed, same
outputs to float rounding, and bit-identical weights after AdamW steps on the demo's ResNet), and models
registered with MONAI's classes load unchanged.

Adapted from MONAI 1.x (Apache License 2.0): monai/networks/nets/resnet.py (itself after Hara et al.'s 3D ResNets)
and monai/networks/nets/vit.py with its blocks (PatchEmbeddingBlock, TransformerBlock, SABlock, MLPBlock).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_CONV: dict[int, type[nn.Conv2d | nn.Conv3d]] = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM: dict[int, type[nn.BatchNorm2d | nn.BatchNorm3d]] = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAX_POOL: dict[int, type[nn.MaxPool2d | nn.MaxPool3d]] = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL: dict[int, type[nn.AdaptiveAvgPool2d | nn.AdaptiveAvgPool3d]] = {
    2: nn.AdaptiveAvgPool2d,
    3: nn.AdaptiveAvgPool3d,
}


def _spatial(spatial_dims: int) -> int:
    if spatial_dims not in _CONV:
        raise ValueError(f"spatial_dims must be 2 or 3, not {spatial_dims}")
    return spatial_dims


def _trunc_normal_(tensor: torch.Tensor, std: float, a: float, b: float) -> torch.Tensor:
    """MONAI's (and timm's) truncated normal by inverse CDF, mean 0: torch's own now samples by rejection, which
    draws other numbers from the same seed."""

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        tensor.uniform_(2 * cdf(a / std) - 1, 2 * cdf(b / std) - 1)
        return tensor.erfinv_().mul_(std * math.sqrt(2.0)).clamp_(min=a, max=b)


class ResNetBlock(nn.Module):
    """A basic residual block: two 3x3(x3) convolutions with batch norm, ReLU after the sum."""

    def __init__(
        self, in_planes: int, planes: int, spatial_dims: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        conv, norm = _CONV[spatial_dims], _NORM[spatial_dims]
        self.conv1 = conv(in_planes, planes, kernel_size=3, padding=1, stride=stride, bias=False)
        self.bn1 = norm(planes)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = norm(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.act(out)


class ResNet(nn.Module):
    """MONAI's `ResNet(block="basic", feed_forward=False)` with its defaults (7-wide first convolution at stride 1,
    max pool, shortcut "B" with a biased 1x1 convolution): the pooled features of the last stage. `stem_stride`
    2 is MONAI's `conv1_t_stride=2` (torchvision's ImageNet stem)."""

    def __init__(
        self,
        layers: Sequence[int],
        block_inplanes: Sequence[int],
        spatial_dims: int,
        n_input_channels: int,
        stem_stride: int = 1,
    ):
        super().__init__()
        dims = _spatial(spatial_dims)
        conv = _CONV[dims]
        self.in_planes = block_inplanes[0]
        self.conv1 = conv(n_input_channels, self.in_planes, kernel_size=7, stride=stem_stride, padding=3, bias=False)
        self.bn1 = _NORM[dims](self.in_planes)
        self.act = nn.ReLU(inplace=True)
        self.maxpool = _MAX_POOL[dims](kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block_inplanes[0], layers[0], dims)
        self.layer2 = self._make_layer(block_inplanes[1], layers[1], dims, stride=2)
        self.layer3 = self._make_layer(block_inplanes[2], layers[2], dims, stride=2)
        self.layer4 = self._make_layer(block_inplanes[3], layers[3], dims, stride=2)
        self.avgpool = _AVG_POOL[dims]((1,) * dims)
        self.fc = None
        for module in self.modules():
            if isinstance(module, conv):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, _NORM[dims]):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, blocks: int, spatial_dims: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes:
            downsample = nn.Sequential(
                _CONV[spatial_dims](self.in_planes, planes, kernel_size=1, stride=stride, bias=True),
                _NORM[spatial_dims](planes),
            )
        layers = [ResNetBlock(self.in_planes, planes, spatial_dims, stride, downsample)]
        self.in_planes = planes
        layers += [ResNetBlock(planes, planes, spatial_dims) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class PatchEmbeddingBlock(nn.Module):
    """Non-overlapping patches by a strided convolution, plus learnable position embeddings."""

    def __init__(self, in_channels: int, img_size: int, patch_size: int, hidden_size: int, spatial_dims: int):
        super().__init__()
        if img_size < patch_size:
            raise ValueError("patch_size should be smaller than img_size.")
        self.patch_embeddings = _CONV[spatial_dims](in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)
        n_patches = (img_size // patch_size) ** spatial_dims
        self.position_embeddings = nn.Parameter(torch.zeros(1, n_patches, hidden_size))
        self.dropout = nn.Dropout(0.0)
        _trunc_normal_(self.position_embeddings, std=0.02, a=-2.0, b=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embeddings(x).flatten(2).transpose(-1, -2)
        return self.dropout(x + self.position_embeddings)


class MLPBlock(nn.Module):
    def __init__(self, hidden_size: int, mlp_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(hidden_size, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, hidden_size)
        self.fn = nn.GELU()
        self.drop1 = nn.Dropout(0.0)
        self.drop2 = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.linear2(self.drop1(self.fn(self.linear1(x)))))


class SABlock(nn.Module):
    """Multi-head self-attention with one bias-free qkv projection (MONAI's layout: qkv, then heads)."""

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.qkv = nn.Linear(hidden_size, hidden_size * 3, bias=False)
        self.drop_output = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        # "b h (qkv l d) -> qkv b l h d": q, k, v, each [B, heads, tokens, head width]
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head width), as MONAI's
        return self.drop_output(self.out_proj(out.transpose(1, 2).reshape(batch, length, width)))


class TransformerBlock(nn.Module):
    """Pre-norm attention and MLP with residuals. `norm_cross_attn` is unused, kept because MONAI's block has it
    (its weights are in every checkpoint), and frozen: DDP without `find_unused_parameters` stops at the second step
    on a trainable parameter that gets no gradient."""

    def __init__(self, hidden_size: int, mlp_dim: int, num_heads: int) -> None:
        super().__init__()
        self.mlp = MLPBlock(hidden_size, mlp_dim)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.attn = SABlock(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.norm_cross_attn = nn.LayerNorm(hidden_size).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """MONAI's `ViT(classification=False)` with conv patches and learnable positions: the normed patch tokens."""

    def __init__(
        self,
        in_channels: int,
        img_size: int,
        patch_size: int,
        hidden_size: int,
        mlp_dim: int,
        num_layers: int,
        num_heads: int,
        spatial_dims: int,
    ) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError("hidden_size should be divisible by num_heads.")
        dims = _spatial(spatial_dims)
        self.patch_embedding = PatchEmbeddingBlock(in_channels, img_size, patch_size, hidden_size, dims)
        self.blocks = nn.ModuleList(TransformerBlock(hidden_size, mlp_dim, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
