"""The plain PyTorch pieces of training (radpipe/train/steps.py), without Ray or data."""

from __future__ import annotations

import math

import pytest
import torch

from radpipe.model.clip import ContrastiveModel
from radpipe.train.steps import build_optimizer, build_scheduler, evaluate, train_step
from tests.train.tiny import tiny_experiment


def _model_and_batch(seed: int = 0) -> tuple[ContrastiveModel, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    exp = tiny_experiment()
    model = ContrastiveModel(exp.model, vocab_size=exp.model.text.vocab_size)
    n, size, length = 8, exp.model.image.input_size, exp.model.text.max_length
    batch = {
        "image": torch.randn(n, 1, size, size),
        "ids": torch.randint(1, exp.model.text.vocab_size, (n, length)),
        "mask": torch.ones(n, length, dtype=torch.long),
    }
    return model, batch


def test_the_loss_falls_on_a_fixed_batch() -> None:
    model, batch = _model_and_batch()
    cfg = tiny_experiment(steps=30, warmup_steps=2, lr=0.002).train
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    losses = [train_step(model, batch, optimizer, scheduler, "fp32") for _ in range(cfg.steps)]
    assert all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses  # eight pairs: the model learns them
    held = evaluate(model, [batch], "fp32", limit=1)
    assert held["val_top1"] >= 0.75 and held["val_loss"] < losses[0]


def test_biases_norms_and_the_temperature_get_no_weight_decay() -> None:
    model, _ = _model_and_batch()
    optimizer = build_optimizer(model, tiny_experiment(weight_decay=0.05).train)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    names = {id(p): name for name, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decayed["params"])
    assert all(p.ndim < 2 or "logit_scale" in names[id(p)] for p in plain["params"])
    assert any("logit_scale" in names[id(p)] for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(("warmup", "steps"), [(10, 100), (0, 50)])
def test_warm_up_rises_linearly_then_cosine_ends_at_a_tenth(warmup: int, steps: int) -> None:
    model, _ = _model_and_batch()
    cfg = tiny_experiment(steps=steps, warmup_steps=warmup, lr=1.0).train
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    rates = []
    for _ in range(steps + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    if warmup:
        assert rates[0] == pytest.approx(1 / warmup)
        assert rates[:warmup] == sorted(rates[:warmup])  # rising
    assert rates[warmup] == pytest.approx(1.0)  # the peak, where warm-up ends
    assert rates[steps] == pytest.approx(0.1)  # a tenth of the peak at the last step
    assert rates[warmup:] == sorted(rates[warmup:], reverse=True)  # falling all the way


def test_the_other_modalitys_last_batches_join_the_contrastive_negatives() -> None:
    import torch.nn.functional as F

    from radpipe.model.clip import contrastive_loss
    from radpipe.train.steps import ModalityNegatives

    memory = ModalityNegatives()
    radiographs = F.normalize(torch.eye(4, 8), dim=-1)
    assert memory.for_batch(volumes=True) is None  # nothing yet
    memory.keep(False, radiographs, radiographs)
    assert memory.for_batch(volumes=False) is None  # a batch never meets its own modality's last batch
    negatives = memory.for_batch(volumes=True)
    assert negatives is not None and torch.equal(negatives[0], radiographs)
    queue = ModalityNegatives(batches=2)
    for batch in range(3):
        queue.keep(True, torch.full((2, 8), float(batch)), torch.zeros(2, 8))
    kept = queue.for_batch(volumes=False)
    assert kept is not None and kept[0][:, 0].tolist() == [1.0, 1.0, 2.0, 2.0]  # the last two batches
    volumes = F.normalize(torch.eye(4, 8).roll(4, dims=1), dim=-1)  # orthogonal to the radiographs
    scale = torch.tensor(10.0)
    plain = contrastive_loss(volumes, volumes, scale)
    assert contrastive_loss(volumes, volumes, scale, negatives) > plain  # more candidates to tell apart
    confusable = (volumes.clone(), volumes.clone())  # negatives as close as the positives: chance among two
    assert contrastive_loss(volumes, volumes, scale, confusable).item() == pytest.approx(
        plain.item() + math.log(2), abs=0.05
    )


def test_an_examination_swapped_report_is_a_hard_negative_encoded_in_the_same_forward() -> None:
    from radpipe.model.coca import objective_loss

    model, batch = _model_and_batch()
    cfg = model.cfg
    plain, _ = objective_loss(model, cfg, batch)
    swapped = dict(batch, swap_ids=batch["ids"].clone(), swap_mask=batch["mask"].clone())
    loss, parts = objective_loss(model, cfg, swapped)
    # Each image now also meets a candidate as close as its own report: the loss rises, by about log 2 at most.
    assert plain.item() < loss.item() <= plain.item() + math.log(2) + 1e-4
    assert parts["text_embedding"].shape[0] == len(batch["image"])  # the swapped texts are not kept as negatives
    other = dict(swapped, swap_ids=torch.randint(1, cfg.text.vocab_size, batch["ids"].shape))
    assert objective_loss(model, cfg, other)[0].item() != pytest.approx(loss.item())  # the swapped texts count
