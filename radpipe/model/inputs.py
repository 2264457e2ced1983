"""Model inputs in batches of one kind: radiographs and volumes never share a batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def input_batches(
    inputs: Sequence[np.ndarray], device: torch.device, chunk: int, volume_chunk: int
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Model inputs as batches of one kind each, with their positions in `inputs`: radiographs [H, W] (up to
    `chunk`, a grey channel added) and volumes [3, D, H, W] (up to `volume_chunk`): bounded memory, and never a
    radiograph padded to a volume."""
    if unknown := [x.shape for x in inputs if x.ndim not in (2, 4)]:
        raise ValueError(f"a model input is [H, W] (a radiograph) or [3, D, H, W] (a volume); got {unknown[0]}")
    for rank, step in ((2, chunk), (4, volume_chunk)):
        rows = [i for i, x in enumerate(inputs) if x.ndim == rank]
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            batch = np.stack([inputs[i] for i in part])
            yield part, torch.from_numpy(batch[:, None] if rank == 2 else batch).to(device)
