"""The function every Ray Train worker runs. It reads top to bottom; Ray calls are numbered.

Resumable: a restarted worker group continues from the last reported checkpoint (model, optimiser,
scheduler, step), so a run killed mid-way still ends at exactly `train.steps` steps.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch

from radpipe.model.coca import build_model
from radpipe.model.config import ExperimentConfig, TrainConfig
from radpipe.train.augment import augment_images, step_generator
from radpipe.train.steps import ModalityNegatives, build_optimizer, build_scheduler, evaluate, train_step, unwrap

STATE_FILE = "state.pt"
log = logging.getLogger(__name__)
_SHOWN = ("train_loss", "val_loss", "val_top1", "val_caption_loss", "samples_per_second")
SHUFFLE_BATCHES = 4  # the local shuffle buffer, in batches


def train_loop_per_worker(config: dict[str, Any]) -> None:
    exp = ExperimentConfig.model_validate(config["experiment"])
    cfg = exp.train
    torch.set_num_threads(exp.scaling.cpus_per_worker)

    # (1) Who am I: rank 0 alone logs to MLflow and writes checkpoints.
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)  # the same initial weights on every worker (DDP also broadcasts them)

    model: torch.nn.Module = build_model(
        exp.model, config["vocab_size"], config.get("decoder_vocab_size"), cfg.gradient_checkpointing
    )
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)

    # (2) Resume from the last checkpoint Ray kept, if this is a restart: weights now, optimiser state
    # after the move to the device (load_state_dict puts AdamW's moments on their parameters' device).
    state = _last_checkpoint()
    step, epoch, resumed_from = (state["step"], state["epoch"], state["step"]) if state else (0, 0, 0)
    if state is not None:
        model.load_state_dict(state["model"])

    # (3) Wrap for DDP and move to the device. A Hugging Face encoder may hold parts the loss never
    # reaches (BERT's pooler), and a report-writing objective with a zero weight never reaches the text
    # encoder (captioning, or coca with contrastive_weight 0) or the decoder; DDP must then be told, or it
    # stops at the second step.
    unused = bool(exp.model.text.checkpoint) or (exp.model.writes_reports and 0.0 in exp.model.loss_weights)
    model = ray.train.torch.prepare_model(model, parallel_strategy_kwargs={"find_unused_parameters": unused})
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])

    # (4) This worker's streams of training batches (radiographs, and volumes for a model of both); rank 0 also
    # reads the validation split(s).
    def batches(name: str, size: int, from_epoch: int) -> _Batches:
        return _Batches(ray.train.get_dataset_shard(name), size, cfg.seed, rank, device, from_epoch)

    sources = {"train": batches("train", cfg.batch_size, epoch)}
    mixed = exp.model.mixed
    if mixed:
        volume_epoch = state.get("volume_epoch", 0) if state else 0
        sources["train_volumes"] = batches("train_volumes", cfg.volume_batch_size or cfg.batch_size, volume_epoch)
    val_shards = {name: ray.train.get_dataset_shard(name) for name in config["val_datasets"] if rank == 0}

    logger = _metric_logger(config, resumed_from) if rank == 0 else None
    run = _Run(cfg, model, optimizer, scheduler, rank, device, logger, val_shards, resumed_from, sources)

    window = _Window()
    negatives = ModalityNegatives() if mixed else None
    total = _Total(started=time.perf_counter())
    while step < cfg.steps:
        name = "train" if not mixed or radiograph_step(step, cfg.radiograph_fraction) else "train_volumes"
        fetch_start = time.perf_counter()
        batch = sources[name].next()
        compute_start = time.perf_counter()
        total.wait += compute_start - fetch_start
        window.wait += 0.0 if step == resumed_from else compute_start - fetch_start  # not the stream's start-up
        if batch["image"].dim() == 4:  # radiographs; volumes are not augmented
            batch["image"] = augment_images(batch["image"], cfg.augment, step_generator(cfg.seed, rank, step))
        window.losses.append(train_step(model, batch, optimizer, scheduler, cfg.precision, negatives))
        window.compute += time.perf_counter() - compute_start
        step += 1
        window.samples += len(batch["image"]) * world
        run.after_step(step, window)
    if logger is not None:
        # Every wait for a batch over the loop's wall time: epoch boundaries and the first batch included.
        last = {"loader_wait_fraction_total": total.fraction()}
        volume_steps = step - math.floor(step * cfg.radiograph_fraction)  # every step so far, resumed or not
        logger.log(last | ({"volume_steps": volume_steps} if mixed else {}), step=step)
        logger.close()


def radiograph_step(step: int, fraction: float) -> bool:
    """Whether step `step` (from 0) of a model of radiographs and volumes takes a radiograph batch: spread
    evenly (Bresenham), the same on every worker (DDP needs every worker in the same forward)."""
    return math.floor((step + 1) * fraction) > math.floor(step * fraction)


class _Batches:
    """One dataset shard's training batches, epoch after epoch, each epoch in a new order (reproducibly)."""

    def __init__(self, shard: Any, batch_size: int, seed: int, rank: int, device: torch.device, epoch: int) -> None:
        self.shard, self.batch_size, self.seed, self.rank, self.device = shard, batch_size, seed, rank, device
        self.epoch = epoch
        self._batches: Iterator[dict[str, torch.Tensor]] | None = None
        self._yielded = 0

    def next(self) -> dict[str, torch.Tensor]:
        while True:
            if self._batches is None:
                self._batches = iter(
                    self.shard.iter_torch_batches(
                        batch_size=self.batch_size,
                        drop_last=True,
                        device=self.device,
                        # Rows shuffled within a few batches, in another order every epoch and worker.
                        local_shuffle_buffer_size=self.batch_size * SHUFFLE_BATCHES,
                        local_shuffle_seed=(self.seed * 1_000_003 + self.rank) * 1_000_003 + self.epoch,
                    )
                )
                self._yielded = 0
            batch = next(self._batches, None)
            if batch is not None:
                self._yielded += 1
                return batch
            if not self._yielded:
                raise RuntimeError(
                    f"the training split yields no full batch of {self.batch_size}: lower the batch size or add data"
                )
            self.epoch, self._batches = self.epoch + 1, None


@dataclass
class _Run:
    """What a step's bookkeeping needs: when to log, validate and checkpoint, and where to."""

    cfg: TrainConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    rank: int
    device: torch.device
    logger: Any  # radpipe.tracking.MetricLogger on rank 0, else None
    val_shards: dict[str, Any]  # rank 0's validation streams ("val", and "val_volumes" for a mixed model)
    resumed_from: int
    sources: dict[str, _Batches]

    def after_step(self, step: int, window: _Window) -> None:
        cfg, last = self.cfg, step == self.cfg.steps
        epoch = self.sources["train"].epoch
        metrics: dict[str, float] = {}
        if step % cfg.log_every == 0 or last:
            metrics = window.close() | _state_metrics(self.model, self.scheduler, epoch)
        if step % cfg.val_every == 0 or last:
            for name, shard in self.val_shards.items():
                size = self.sources["train_volumes" if name == "val_volumes" else "train"].batch_size
                val_batches = shard.iter_torch_batches(batch_size=size, device=self.device)
                values = evaluate(unwrap(self.model), val_batches, cfg.precision, cfg.val_batches)
                prefix = "val_volume_" if name == "val_volumes" else "val_"
                metrics.update({prefix + key.removeprefix("val_"): value for key, value in values.items()})
        if self.logger is not None and metrics:
            self.logger.log(metrics, step=step)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in _SHOWN)
            log.info("step %d/%d: %s", step, cfg.steps, shown)
        if step % cfg.checkpoint_every == 0 or last:
            # (5) Every worker reports (it is a barrier); rank 0 attaches the checkpoint.
            epochs = {"epoch": epoch}
            if "train_volumes" in self.sources:
                epochs["volume_epoch"] = self.sources["train_volumes"].epoch
            _report(self.model, self.optimizer, self.scheduler, step, epochs, self.resumed_from, self.rank)


@dataclass
class _Total:
    """The whole loop: time spent waiting for batches, and its wall time."""

    started: float
    wait: float = 0.0

    def fraction(self) -> float:
        return self.wait / max(time.perf_counter() - self.started, 1e-9)


@dataclass
class _Window:
    """Throughput since the last logged step: time waiting for batches and in train steps only (not
    validation or checkpoints), and the losses of those steps."""

    samples: int = 0
    wait: float = 0.0
    compute: float = 0.0
    losses: list[float] = field(default_factory=list)

    def close(self) -> dict[str, float]:
        """The window's metrics; the next window starts empty."""
        elapsed = self.wait + self.compute
        metrics = {
            "train_loss": sum(self.losses) / len(self.losses),
            "samples_per_second": self.samples / elapsed,
            "loader_wait_fraction": self.wait / elapsed,
        }
        self.samples, self.wait, self.compute, self.losses = 0, 0.0, 0.0, []
        return metrics


def _metric_logger(config: dict[str, Any], resumed_from: int) -> Any:
    """Rank 0's MLflow logger for the run; a restart records the step it resumed from."""
    from radpipe.tracking import MetricLogger

    logger = MetricLogger(config["tracking_uri"], config["run_id"])
    if resumed_from:
        logger.log({"resumed_from_step": resumed_from}, step=resumed_from)
    return logger


def _state_metrics(
    model: torch.nn.Module, scheduler: torch.optim.lr_scheduler.LRScheduler, epoch: int
) -> dict[str, float]:
    return {
        "learning_rate": float(scheduler.get_last_lr()[0]),
        "temperature": float(1 / unwrap(model).logit_scale.detach().exp()),
        "epoch": epoch,
    }


def _last_checkpoint() -> dict[str, Any] | None:
    """The state of the last checkpoint Ray kept for this run (a restarted worker group), or None."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state: dict[str, Any] = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
    return state


def _report(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    epochs: dict[str, int],
    resumed_from: int,
    rank: int,
) -> None:
    metrics = {"step": step, "epoch": epochs["epoch"], "resumed_from_step": resumed_from}
    if rank != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        **epochs,
    }
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, Path(folder) / STATE_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
