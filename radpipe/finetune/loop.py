"""The fine-tuning loop, plain PyTorch on precomputed features (heads are small: no cluster), and its score."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from radpipe.evaluate.metrics import auroc, bootstrap
from radpipe.finetune.classifier import FindingClassifier
from radpipe.finetune.config import FinetuneConfig
from radpipe.model.clip import ContrastiveModel

EpochCallback = Callable[[int, float], None]  # (epoch, mean training loss)


def train_classifier(
    model: ContrastiveModel,
    features: torch.Tensor,
    targets: np.ndarray,
    config: FinetuneConfig,
    on_epoch: EpochCallback | None = None,
) -> tuple[FindingClassifier, list[float]]:
    """A head (and in partial mode the encoder's last stage) trained on features; returns it and per-epoch losses.

    Deterministic for `config.seed` on a given device: seeded initialisation and batch order.
    """
    y = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    positives = float(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("training needs positive and negative examples")
    device = next(model.parameters()).device
    torch.manual_seed(config.seed)  # the head's initialisation
    classifier = FindingClassifier(model, config.mode).to(device)
    # BatchNorm keeps its pretrained statistics (eval mode throughout): a few-shot batch is too small to
    # re-estimate them, and serving runs in eval mode anyway. Gradients flow regardless of the mode.
    classifier.eval()
    # Class-balanced: the positives weigh as much as the negatives in the loss, however rare the finding.
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(negatives / positives, device=device))
    groups: list[dict[str, object]] = [
        {"params": list(classifier.head.parameters()), "lr": config.lr, "weight_decay": config.weight_decay}
    ]
    if classifier.encoder_parameters():
        groups.append({"params": classifier.encoder_parameters(), "lr": config.encoder_lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups)
    order_generator = torch.Generator().manual_seed(config.seed)
    losses = []
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(y), generator=order_generator)
        total = 0.0
        for start in range(0, len(y), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = loss_fn(classifier(features[batch].to(device)), y[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(y))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return classifier, losses


def auroc_metrics(
    targets: np.ndarray, scores: np.ndarray, resamples: int, seed: int, groups: Sequence[str] | None = None
) -> dict[str, float]:
    """AUROC on the test rows with its bootstrap 95% interval (seeded; resampling `groups`, studies, if given)."""
    estimate = bootstrap(auroc, np.asarray(targets), np.asarray(scores), resamples=resamples, seed=seed, groups=groups)
    return {"finetune_auroc": estimate.value, "finetune_auroc_low": estimate.low, "finetune_auroc_high": estimate.high}
