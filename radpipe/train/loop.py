"""The function every Ray Train worker runs. It reads top to bottom; Ray calls are numbered.

Resumable: a restarted worker group continues from the last reported checkpoint (model, optimiser,
scheduler, step), so a run killed mid-way still ends at exactly `train.steps` steps.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch

from radpipe.model.clip import ContrastiveModel
from radpipe.model.config import ExperimentConfig
from radpipe.train.steps import build_optimizer, build_scheduler, evaluate, train_step, unwrap

STATE_FILE = "state.pt"
log = logging.getLogger(__name__)
_SHOWN = ("train_loss", "val_loss", "val_top1", "samples_per_second")


def train_loop_per_worker(config: dict[str, Any]) -> None:
    exp = ExperimentConfig.model_validate(config["experiment"])
    cfg = exp.train
    torch.set_num_threads(exp.scaling.cpus_per_worker)

    # (1) Who am I: rank 0 alone logs to MLflow and writes checkpoints.
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)  # the same initial weights on every worker (DDP also broadcasts them)

    model: torch.nn.Module = ContrastiveModel(exp.model, config["vocab_size"], cfg.gradient_checkpointing)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)

    # (2) Resume from the last checkpoint Ray kept, if this is a restart: weights now, optimiser state
    # after the move to the device (load_state_dict puts AdamW's moments on their parameters' device).
    step, epoch, resumed_from, state = 0, 0, 0, None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        step, epoch, resumed_from = state["step"], state["epoch"], state["step"]

    # (3) Wrap for DDP and move to the device. A Hugging Face encoder may hold parts the loss never
    # reaches (BERT's pooler); DDP must then be told, or it stops at the second step.
    unused = bool(exp.model.text.checkpoint)
    model = ray.train.torch.prepare_model(model, parallel_strategy_kwargs={"find_unused_parameters": unused})
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])

    # (4) This worker's stream of training batches; rank 0 also reads the validation split.
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val") if rank == 0 and config["has_val"] else None

    logger = None
    if rank == 0:
        from radpipe.tracking import MetricLogger

        logger = MetricLogger(config["tracking_uri"], config["run_id"])
        if resumed_from:
            logger.log({"resumed_from_step": resumed_from}, step=step)

    # Throughput counts time spent waiting for batches and in train steps; not validation or checkpoints,
    # and not the wait for the run's very first batch (the stream's start-up).
    window_samples, window_wait, window_compute, losses, first = 0, 0.0, 0.0, [], True
    while step < cfg.steps:
        batches = train_shard.iter_torch_batches(batch_size=cfg.batch_size, drop_last=True, device=device)
        fetch_start = time.perf_counter()
        for batch in batches:
            compute_start = time.perf_counter()
            window_wait += 0.0 if first else compute_start - fetch_start
            first = False
            losses.append(train_step(model, batch, optimizer, scheduler, cfg.precision))
            window_compute += time.perf_counter() - compute_start
            step += 1
            window_samples += len(batch["image"]) * world
            metrics: dict[str, float] = {}
            if step % cfg.log_every == 0 or step == cfg.steps:
                elapsed = window_wait + window_compute
                metrics.update(
                    train_loss=sum(losses) / len(losses),
                    samples_per_second=window_samples / elapsed,
                    loader_wait_fraction=window_wait / elapsed,
                    learning_rate=float(scheduler.get_last_lr()[0]),
                    temperature=float(1 / unwrap(model).logit_scale.detach().exp()),
                    epoch=epoch,
                )
                window_samples, window_wait, window_compute, losses = 0, 0.0, 0.0, []
            if val_shard is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                val_batches = val_shard.iter_torch_batches(batch_size=cfg.batch_size, device=device)
                metrics.update(evaluate(unwrap(model), val_batches, cfg.precision, cfg.val_batches))
            if logger is not None and metrics:
                logger.log(metrics, step=step)
                shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in _SHOWN)
                log.info("step %d/%d: %s", step, cfg.steps, shown)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                # (5) Every worker reports (it is a barrier); rank 0 attaches the checkpoint.
                _report(model, optimizer, scheduler, step, epoch, resumed_from, rank)
            if step >= cfg.steps:
                break
            fetch_start = time.perf_counter()
        else:
            epoch += 1
            if step == 0:
                raise RuntimeError("the training split yields no full batch: lower train.batch_size or add data")
    if logger is not None:
        logger.close()


def _report(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    epoch: int,
    resumed_from: int,
    rank: int,
) -> None:
    metrics = {"step": step, "epoch": epoch, "resumed_from_step": resumed_from}
    if rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "epoch": epoch,
    }
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, Path(folder) / STATE_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
