"""`radpipe bench --suite train`: Ray Train (1 and 2 workers) beside a plain PyTorch loop, and the loader.

Same model, data, batch size and steps for every contender, in the same run, rounds interleaved. Training
throughput is the median over logging windows of samples/s (waiting for batches plus train steps; the
stream's start-up is left out of both). The loader figure is the Ray Data stream alone, no model.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from radpipe.bench import CHECKOUT
from radpipe.dataset.store import DatasetStore
from radpipe.model.coca import build_model
from radpipe.model.config import ExperimentConfig, load_config
from radpipe.model.text import TextTokenizer
from radpipe.train.augment import augment_images, step_generator
from radpipe.train.data import Targets, TrainingView, prepare_batch, read_split_table, training_view
from radpipe.train.run import build_report_tokenizer, build_tokenizer
from radpipe.train.steps import build_optimizer, build_scheduler, train_step

BENCH_SEED = 31


@dataclass
class Throughput:
    name: str
    samples_per_second: float
    wall_seconds: float  # the whole contender, start-up included
    loader_wait_fraction: float | None = None  # median over logging windows
    loader_wait_total: float | None = None  # every wait over the loop's wall time, epoch boundaries included


def prepared_dataset(out: Path, studies: int, console: Console) -> Path:
    """A generated, ingested, curated and validated dataset, cached between runs."""
    from radpipe.commands import curate_dataset, ingest_sources, validate
    from radpipe.synth import write_archive

    root = out / f"train-{studies}-{BENCH_SEED}"
    dataset = root / "dataset"
    if not (root / ".complete").exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        console.print(f"preparing a {studies}-study dataset (synth, ingest, curate, validate) ...")
        write_archive(root / "archive", studies=studies, seed=BENCH_SEED)
        ingest_sources(str(root / "archive" / "dicom"), str(root / "archive" / "reports"), str(dataset), "cxr-224")
        curate_dataset(str(dataset))
        if not validate(str(dataset)).passed:
            raise RuntimeError("the benchmark dataset failed validation")
        (root / ".complete").touch()
    return dataset


def _plain_loop(exp: ExperimentConfig, store: DatasetStore, view: TrainingView, tokenizer: TextTokenizer) -> Throughput:
    """The baseline: one process, no Ray, the same batches prepared inline, the same train_step (and with a
    CoCa config, the same model with its report decoder: the objectives' step times compare)."""
    started = time.perf_counter()
    torch.set_num_threads(exp.scaling.cpus_per_worker)
    torch.manual_seed(exp.train.seed)
    table = read_split_table(store, view, "train")
    writer = build_report_tokenizer(view, exp)
    targets = Targets(view.targets["train"], writer[0]) if writer else None
    model = build_model(exp.model, tokenizer.vocab_size, writer[0].vocab_size if writer else None)
    optimizer, cfg = build_optimizer(model, exp.train), exp.train
    scheduler = build_scheduler(optimizer, cfg)
    texts, size = view.texts["train"], exp.model.image.input_size
    windows, step, window_samples, window_time = [], 0, 0, 0.0
    while step < cfg.steps:
        for start in range(0, table.num_rows - cfg.batch_size + 1, cfg.batch_size):
            tick = time.perf_counter()
            rows = table.slice(start, cfg.batch_size).to_pydict()
            columns = {k: np.array(v, dtype=object) for k, v in rows.items()}
            batch = prepare_batch(columns, texts, tokenizer, size, targets)
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            tensors["image"] = augment_images(tensors["image"], cfg.augment, step_generator(cfg.seed, 0, step))
            train_step(model, tensors, optimizer, scheduler, cfg.precision)
            step += 1
            window_samples += len(batch["image"])
            window_time += time.perf_counter() - tick
            if step % cfg.log_every == 0:
                windows.append(window_samples / window_time)
                window_samples, window_time = 0, 0.0
            if step >= cfg.steps:
                break
    name = "plain PyTorch loop" + (f", {exp.model.objective}" if exp.model.writes_reports else "")
    return Throughput(name, statistics.median(windows), time.perf_counter() - started)


def _ray_run(
    exp: ExperimentConfig, dataset: str, view: TrainingView, tokenizer: TextTokenizer, out: Path
) -> Throughput:
    from mlflow import MlflowClient

    from radpipe import tracking
    from radpipe.train.ray import fit

    started = time.perf_counter()
    workers = exp.scaling.num_workers
    run_id = tracking.start_run("radpipe-bench", f"ray-train-{workers}w", {"workers": str(workers)}, {})
    loop = {"vocab_size": tokenizer.vocab_size, "tracking_uri": tracking.current_uri(), "run_id": run_id}
    fit(exp, DatasetStore(dataset), view, tokenizer, loop, storage=str(out / "ray-results"), run_name=run_id)
    client = MlflowClient()
    rates = [m.value for m in client.get_metric_history(run_id, "samples_per_second")]
    waits = [m.value for m in client.get_metric_history(run_id, "loader_wait_fraction")]
    total = client.get_run(run_id).data.metrics.get("loader_wait_fraction_total")
    client.set_terminated(run_id, "FINISHED")
    name = f"Ray Train, {workers} worker{'s' if workers > 1 else ''}"
    seconds = time.perf_counter() - started
    return Throughput(name, statistics.median(rates), seconds, statistics.median(waits), total)


def _loader(exp: ExperimentConfig, store: DatasetStore, view: TrainingView, tokenizer: TextTokenizer) -> Throughput:
    """The Ray Data stream alone: rows/s delivered as training batches, start-up (first batch) left out."""
    from radpipe.train.ray import image_stream

    started = time.perf_counter()
    stream = image_stream(store, view.texts["train"], tokenizer, exp.model.image.input_size)
    rows, first_at = 0, None
    for _epoch in range(3):
        for batch in stream.iter_batches(batch_size=exp.train.batch_size, batch_format="numpy"):
            if first_at is None:
                first_at = time.perf_counter()
                continue
            rows += len(batch["image"])
    assert first_at is not None
    return Throughput("Ray Data loader only", rows / (time.perf_counter() - first_at), time.perf_counter() - started)


def run_train_bench(out: Path, console: Console, studies: int = 240, repeat: int = 2) -> dict[str, Any]:
    """Measure, print and save training throughput figures (see the module docstring)."""
    from radpipe import tracking
    from radpipe.settings import get_settings
    from radpipe.train.ray import ensure_ray

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dataset = prepared_dataset(out, studies, console)
    store = DatasetStore(str(dataset))
    base = load_config(CHECKOUT / "configs" / "smoke.yaml")
    # 84 steps over 14 batches an epoch: six epochs, five boundaries, where a streaming loader used to starve.
    exp = base.model_copy(update={"train": base.train.model_copy(update={"steps": 84, "val_every": 10_000})})
    two = exp.model_copy(update={"scaling": exp.scaling.model_copy(update={"num_workers": 2})})
    # The same encoders, data and steps with a report decoder (objective coca): the generative step's cost.
    coca_base = load_config(CHECKOUT / "configs" / "smoke-coca.yaml")
    coca = coca_base.model_copy(update={"train": exp.train})
    view = training_view(store)
    tokenizer, _ = build_tokenizer(view, exp)
    settings = get_settings()
    tracking.use(f"sqlite:///{out / 'bench-mlflow.db'}")  # the benchmark's runs stay out of the user's store
    ensure_ray(None, two, settings.home / "ray")  # local Ray sized for the 2-worker contender and its loader
    runs: dict[str, list[Throughput]] = {}
    for round_number in range(1, repeat + 1):
        for label, run in (
            ("plain", lambda: _plain_loop(exp, store, view, tokenizer)),
            ("ray1", lambda: _ray_run(exp, str(dataset), view, tokenizer, out)),
            ("ray2", lambda: _ray_run(two, str(dataset), view, tokenizer, out)),
            ("loader", lambda: _loader(exp, store, view, tokenizer)),
            ("plain_coca", lambda: _plain_loop(coca, store, view, tokenizer)),
        ):
            console.print(f"round {round_number}/{repeat}: {label} ...")
            runs.setdefault(label, []).append(run())
    medians = {label: statistics.median(t.samples_per_second for t in ts) for label, ts in runs.items()}
    epochs = exp.train.steps / max(1, view.count("train") // exp.train.batch_size)
    title = (
        f"training benchmark: {view.count('train')} images, {exp.train.steps} steps x "
        f"{exp.train.batch_size} per worker ({epochs:.1f} epochs for 1 worker), "
        f"{exp.model.image.input_size} px, {os.cpu_count()} cores"
    )
    table = _throughput_table(title, runs, medians)
    console.print(table)
    ratios = {
        "plain_over_ray1": medians["plain"] / medians["ray1"],
        "ray2_over_ray1": medians["ray2"] / medians["ray1"],
        "loader_over_ray1": medians["loader"] / medians["ray1"],
        # samples/s of the contrastive step over the CoCa step: how many times longer a CoCa step takes
        "coca_step_time_over_contrastive": medians["plain"] / medians["plain_coca"],
    }
    totals = [t.loader_wait_total for t in runs["ray1"] if t.loader_wait_total is not None]
    if totals:
        ratios["loader_wait_total_ray1"] = statistics.median(totals)
        console.print(f"loader wait over the whole run, 1 worker: {ratios['loader_wait_total_ray1']:.1%} (goal <= 5%)")
    console.print(
        f"Ray Train overhead (plain / Ray, 1 worker) = {ratios['plain_over_ray1']:.2f} (target <= 1.15); "
        f"2 workers / 1 worker = {ratios['ray2_over_ray1']:.2f}; "
        f"loader / training = {ratios['loader_over_ray1']:.1f} (must stay > 1); "
        f"a CoCa step takes {ratios['coca_step_time_over_contrastive']:.2f}x a contrastive one (plain loop)"
    )
    report = {
        "rounds": repeat,
        "images": view.count("train"),
        "results": {label: [t.__dict__ for t in ts] for label, ts in runs.items()},
        "medians": medians,
        "ratios": ratios,
    }
    (out / "train-results.json").write_text(json.dumps(report, indent=2))
    return report


def _throughput_table(title: str, runs: dict[str, list[Throughput]], medians: dict[str, float]) -> Table:
    table = Table(title=title)
    columns = ("contender", "samples/s (median)", "per round", "wall s (median)", "loader wait", "wait, whole run")
    for column in columns:
        table.add_column(column, justify="left" if column == "contender" else "right")
    for label, ts in runs.items():
        waits = [t.loader_wait_fraction for t in ts if t.loader_wait_fraction is not None]
        table.add_row(
            ts[0].name,
            f"{medians[label]:.1f}",
            ", ".join(f"{t.samples_per_second:.1f}" for t in ts),
            f"{statistics.median(t.wall_seconds for t in ts):.1f}",
            f"{statistics.median(waits):.1%}" if waits else "",
            ", ".join(f"{t.loader_wait_total:.1%}" for t in ts if t.loader_wait_total is not None),
        )
    return table
