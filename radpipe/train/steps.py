"""Plain PyTorch pieces of training: optimiser, schedule, precision, one step, one evaluation.

No Ray here: the Ray Train loop (radpipe/train/loop.py) and the plain baseline of `make bench` share them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from radpipe.model.clip import ContrastiveModel
from radpipe.model.coca import CoCaModel, Embeddings, caption_loss, objective_loss
from radpipe.model.config import TrainConfig


def autocast(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """bf16 autocast where asked, or (auto) where the device runs it fast: CUDA with bf16 support."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and the temperature (CLIP's recipe)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "logit_scale" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to a tenth of the peak rate at the last step."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_step(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: str,
    negatives: ModalityNegatives | None = None,
) -> float:
    """One optimiser step on one batch with the model's objective (contrastive, captioning or both); returns
    the loss. With `negatives`, the other modality's last batch adds negatives and this batch is kept for it."""
    model.train()
    device = batch["image"].device
    modality = batch["image"].dim() == 5  # True: volumes
    with autocast(precision, device):
        others = negatives.for_batch(modality) if negatives is not None else None
        loss, parts = objective_loss(model, unwrap(model).cfg, batch, others)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    if negatives is not None:
        negatives.keep(modality, parts["image_embedding"], parts["text_embedding"])
    return float(loss.detach())


# The other modality's batches a model of both keeps as negatives (stale: no momentum encoder). With one volume
# batch in about thirty steps (the demo), four reach back about 130 steps.
NEGATIVE_BATCHES = 4


class ModalityNegatives:
    """A model trained on radiographs and volumes sees modality-pure batches (no radiograph padded to a volume);
    each batch also meets, as extra negatives, the embeddings of the last `batches` batches of the other modality
    (detached, some steps old: MoCo's queue), so the shared space also separates the modalities. Per worker: each
    keeps its own batches."""

    def __init__(self, batches: int = NEGATIVE_BATCHES) -> None:
        self._last: dict[bool, deque[Embeddings]] = {False: deque(maxlen=batches), True: deque(maxlen=batches)}

    def for_batch(self, volumes: bool) -> Embeddings | None:
        kept = self._last[not volumes]
        if not kept:
            return None
        return torch.cat([image for image, _ in kept]), torch.cat([text for _, text in kept])

    def keep(self, volumes: bool, image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
        self._last[volumes].append((image_emb, text_emb))


@torch.no_grad()
def evaluate(
    model: ContrastiveModel, batches: Iterable[dict[str, torch.Tensor]], precision: str, limit: int
) -> dict[str, float]:
    """Loss and image-to-report top-1 over all held-out rows at once (unwrapped model, no collectives), and
    for a report decoder the caption loss per target token.

    Pooling the rows first keeps a short last batch from counting as much as a full one.
    """
    model.eval()
    images, texts = [], []
    caption_sum, caption_tokens = 0.0, 0
    for i, batch in enumerate(batches):
        if i >= limit:
            break
        with autocast(precision, batch["image"].device):
            images.append(model.encode_image(batch["image"]).float())
            texts.append(model.encode_text(batch["ids"], batch["mask"]).float())
            if isinstance(model, CoCaModel) and "target" in batch:
                target = batch["target"].long()
                logits = model.decoder(model.image_memory(batch["image"]), target[:, :-1])
                tokens = int((target[:, 1:] != 0).sum())
                caption_sum += float(caption_loss(logits, target)) * tokens
                caption_tokens += tokens
    if not images or sum(len(x) for x in images) < 2:
        return {}
    caption = {"val_caption_loss": caption_sum / caption_tokens} if caption_tokens else {}
    image_emb, text_emb = torch.cat(images), torch.cat(texts)
    scale = model.logit_scale.clamp(max=math.log(100.0)).exp()
    logits = scale * image_emb @ text_emb.T
    targets = torch.arange(len(logits), device=logits.device)
    loss = (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.T, targets)) / 2
    top1 = (logits.argmax(dim=1) == targets).float().mean()
    return {"val_loss": float(loss), "val_top1": float(top1), **caption}


def unwrap(model: nn.Module) -> ContrastiveModel:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    inner = getattr(model, "module", model)
    assert isinstance(inner, ContrastiveModel)
    return inner
