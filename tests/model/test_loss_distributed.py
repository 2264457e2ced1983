"""Under DDP the loss gathers every worker's embeddings: two workers must train like one on the whole batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from radpipe.model.clip import contrastive_loss

pytestmark = pytest.mark.integration

BATCH, DIM = 6, 8  # per worker


def _setup() -> tuple[torch.nn.Linear, torch.nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    image_head, text_head = torch.nn.Linear(DIM, DIM), torch.nn.Linear(DIM, DIM)
    return image_head, text_head, torch.randn(2 * BATCH, DIM), torch.randn(2 * BATCH, DIM)


def _loss(image_head: torch.nn.Module, text_head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    image = torch.nn.functional.normalize(image_head(x), dim=-1)
    text = torch.nn.functional.normalize(text_head(y), dim=-1)
    return contrastive_loss(image, text, torch.tensor(5.0))


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    image_head, text_head, x, y = _setup()
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.ModuleList([image_head, text_head]))
    rows = slice(rank * BATCH, (rank + 1) * BATCH)
    _loss(model.module[0], model.module[1], x[rows], y[rows]).backward()
    # DDP would average gradients in its hooks; called through .module here, so average them by hand.
    grads = [p.grad for p in model.parameters()]
    for grad in grads:
        dist.all_reduce(grad)
        grad /= 2
    if rank == 0:
        torch.save(grads, out)
    dist.destroy_process_group()


def test_two_workers_compute_the_whole_batch_gradient(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "grads.pt")
    mp.spawn(_worker, args=(port, out), nprocs=2, join=True)
    distributed = torch.load(out)

    image_head, text_head, x, y = _setup()
    _loss(image_head, text_head, x, y).backward()
    single = [p.grad for p in [*image_head.parameters(), *text_head.parameters()]]
    assert len(distributed) == len(single)
    for a, b in zip(distributed, single, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
