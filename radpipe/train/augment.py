"""Training augmentation as a batched torch op on the trainer's device, seeded per (run seed, rank, step).

It runs in the train loop, not in the loader, so a small training split is prepared once and kept in Ray's
object store (every epoch then reads prepared images: no re-read, no re-decode), while each epoch still sees
new augmentations; and a run is reproducible: the same seed, rank and step give the same transform.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from radpipe.model.config import AugmentConfig


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """A CPU generator for one worker's step (CPU draws: the same numbers on a CPU and a CUDA machine)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + rank) * 1_000_003 + step)


def augment_images(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """A small random shift, zoom and gamma per image of [N, C, H, W] in [0, 1]; no flips (situs matters)."""
    n = images.shape[0]

    def uniform() -> torch.Tensor:  # in [-1, 1), drawn on the CPU, used on the images' device
        return (torch.rand(n, generator=generator) * 2 - 1).to(images.device, images.dtype)

    scale = 1.0 + uniform() * cfg.max_scale
    shift_x, shift_y = uniform() * cfg.max_shift * 2, uniform() * cfg.max_shift * 2  # normalised side: 2
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale  # output -> input: zoom in by `scale`, then shift
    theta[:, 0, 2], theta[:, 1, 2] = -shift_x / scale, -shift_y / scale
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = torch.exp(uniform() * cfg.contrast).view(n, 1, 1, 1)
    return moved.clamp(0.0, 1.0).pow(gamma)
