"""Ray, the one module that starts it: the streaming data path (Ray Data), the TorchTrainer run, and the pool of
embedding actors behind `radpipe embed`."""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray
import ray.data
import ray.train
import torch
from ray.data.expressions import col
from ray.train.torch import TorchTrainer

from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, RadpipeError
from radpipe.model.config import ExperimentConfig
from radpipe.model.text import TextTokenizer
from radpipe.preprocess.volume import get_volume_profile
from radpipe.settings import Settings
from radpipe.train.data import ExamSwaps, Targets, TrainingView, prepared_images, prepared_volumes
from radpipe.train.loop import STATE_FILE, train_loop_per_worker

IMAGE_COLUMNS = ["sop_instance_uid", "pixels", "shape", "dtype"]
VOLUME_COLUMNS = ["series_instance_uid", "pixels", "shape", "dtype", "profile"]
# A volume is a few MB to tens of MB: small blocks keep the object store and the loader's memory flat.
PREPARE_VOLUMES = 4
# Rows per Ray Data block sent through `prepared_images`: big enough to amortise task overhead, small in memory.
PREPARE_ROWS = 64


class TrainingFailed(RadpipeError):
    """The Ray Train run failed after its allowed restarts."""


class EmbeddingFailed(RadpipeError):
    """An embedding actor failed: to start, or on a batch (it is not restarted)."""


@dataclass(frozen=True)
class FitResult:
    model_state: dict[str, Any]  # the final checkpoint's model weights
    steps: int
    resumed_from_step: int


def ensure_ray(address: str | None, exp: ExperimentConfig | None, scratch: Path) -> str | None:
    """Connect to RAY_ADDRESS, or start a local instance sized so the loader never waits for the trainers
    (`exp` None: for the embedding actors, at least two logical CPUs: one actor and the reads beside it).

    Returns the folder of Ray's logs when it started one (under RADPIPE_HOME): the workers' and Ray Data's
    output goes there, not to the terminal, where the driver shows one progress line instead.
    """
    if ray.is_initialized():
        return None
    # Training logs its own progress (steps, loss, samples/s); Ray Data's per-operator bars and execution
    # plans only add noise to the terminal (they stay in Ray's log files).
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot connect to the Ray cluster at RAY_ADDRESS={address}: {_first_line(exc)}"
            ) from None
        return None
    scaling = exp.scaling if exp is not None else None
    wanted = scaling.num_workers * scaling.cpus_per_worker + scaling.loader_cpus if scaling is not None else 2
    # Logical CPUs: with as many as cores, trainers would hold them all and Ray Data could not schedule a read.
    temp_dir = _short_temp_dir(scratch)
    ray.init(
        num_cpus=max(os.cpu_count() or 1, wanted),
        # Ray Train's placement-group cleaner asks the State API, which the dashboard serves (loopback only).
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
        _temp_dir=str(temp_dir),
    )
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if scaling is not None and scaling.use_gpu and gpus < scaling.num_workers:
        # Ray Train would wait for the GPUs forever.
        ray.shutdown()
        raise ConfigError(
            f"scaling.use_gpu asks for {scaling.num_workers} GPU worker(s); this machine has {gpus} GPU(s)"
        )
    return str(temp_dir / "session_latest" / "logs")


@contextmanager
def ray_session(address: str | None, scratch: Path) -> Iterator[None]:
    """Ray for one command: the running instance if there is one, else RAY_ADDRESS's cluster or a local
    instance, which the command leaves when it is done (an instance sized for embedding would starve a training
    run started later in the same process)."""
    started = not ray.is_initialized()
    ensure_ray(address, None, scratch)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


EMBED_COLUMNS = ["sop_instance_uid", "study_instance_uid", "pixels", "shape", "dtype"]
# Rows per actor call: a few MB of pixels, enough to keep a GPU busy with the embedder's own batching.
EMBED_ROWS = 256


class _ImageEmbedder:
    """A Ray Data actor: the registered model loaded once per actor process, image rows in, embedding rows out."""

    def __init__(self, model_uri: str, settings: Settings, pool: int, gpu: bool) -> None:
        from radpipe import tracking
        from radpipe.model.registered import load_registered_embedder

        if not gpu:  # the CPU actors of this node share its cores (Ray would give each one thread)
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // pool))
        tracking.configure(settings)
        self.model_uri = model_uri
        self.embedder = load_registered_embedder(model_uri)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from radpipe.model.embed_dataset import embedding_table

        return embedding_table(self.embedder, batch.to_pylist(), self.model_uri)


def embedding_parts(
    store: DatasetStore, model_uri: str, settings: Settings, actors: int | None, uids: Sequence[str] | None = None
) -> Iterator[pa.Table]:
    """images/ (the rows of `uids` only, filtered in the read, when given) through a pool of embedding actors
    (Ray Data `map_batches`): reads stream beside them a block at a time, so memory stays bounded at any size.
    One actor per GPU when the cluster has GPUs (each holds one); on CPUs `actors` (default 1) share the cores,
    and at most one fewer actor than CPUs runs, so reads always find one. An actor that dies fails the command
    (no restart): `radpipe embed` replaces its table only when every part is written."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    pool = actors or max(1, gpus)
    if not gpus:
        pool = max(1, min(pool, cpus - 1))
    rows = read_rows(store, "images", EMBED_COLUMNS)
    if uids is not None:
        rows = rows.filter(expr=col("sop_instance_uid").is_in(sorted(set(uids))))
    with warnings.catch_warnings():
        # max_restarts=0: Ray 2.60 has no named parameter for it (it warns that passing it is deprecated), and
        # with restarts allowed its core worker prints an error line about constructor arguments at every start.
        warnings.simplefilter("ignore", ray.util.annotations.RayDeprecationWarning)
        embedded = rows.map_batches(
            _ImageEmbedder,
            fn_constructor_kwargs={"model_uri": model_uri, "settings": settings, "pool": pool, "gpu": bool(gpus)},
            batch_size=EMBED_ROWS,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=1,
            num_gpus=1 if gpus else 0,
            max_restarts=0,
        )
    try:
        yield from embedded.iter_batches(batch_format="pyarrow", batch_size=None)
    except ray.exceptions.RayError as exc:  # Ray's own message is a page of nested tracebacks
        raise EmbeddingFailed(f"embedding on Ray actors failed: {_first_line(exc)}") from None


def read_rows(store: DatasetStore, table: str, columns: list[str]) -> ray.data.Dataset:
    """A table's current Parquet files as a Ray Data dataset of `columns` (pushed down into the read, as are
    later row filters).

    Through Ray Data's first Parquet datasource, not its "V2" default: V2 starts a fresh actor process to read
    the footers at each execution, which cost ~3 s a read here (every epoch of a streamed split, every
    materialised split, every `radpipe embed`) against ~0.3 s (48-image test dataset, warm Ray, 2026-12-01).
    Ray reads the setting when `read_parquet` is called, so the process's own setting is put back after."""
    context = ray.data.DataContext.get_current()
    was = context.use_datasource_v2
    context.use_datasource_v2 = False
    try:
        return ray.data.read_parquet(store.table_files(table), filesystem=store.fs).select_columns(columns)
    finally:
        context.use_datasource_v2 = was


def _short_temp_dir(scratch: Path) -> Path:
    # Ray's socket paths must stay under 107 bytes; a deep RADPIPE_HOME would break them.
    path = scratch if len(str(scratch)) < 40 else Path("/tmp") / f"radpipe-ray-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_stream(
    store: DatasetStore,
    texts: dict[str, str],
    tokenizer: TextTokenizer,
    input_size: int,
    targets: Targets | None = None,
    swaps: ExamSwaps | None = None,
) -> ray.data.Dataset:
    """images/ rows of one split, decoded to model inputs in Ray Data tasks (no DICOM decoding here)."""
    kwargs = {"texts": texts, "tokenize": tokenizer, "input_size": input_size, "targets": targets, "swaps": swaps}
    return _split_rows(store, "images", IMAGE_COLUMNS, texts).map_batches(
        prepared_images, batch_size=PREPARE_ROWS, batch_format="numpy", fn_kwargs=kwargs
    )


def volume_stream(
    store: DatasetStore,
    texts: dict[str, str],
    tokenizer: TextTokenizer,
    targets: Targets | None = None,
    swaps: ExamSwaps | None = None,
) -> ray.data.Dataset:
    """volumes/ rows of one split (assembled ones: `texts` holds no held-back series) as [3, D, H, W] inputs."""
    return _split_rows(store, "volumes", VOLUME_COLUMNS, texts).map_batches(
        prepared_volumes,
        batch_size=PREPARE_VOLUMES,
        batch_format="numpy",
        fn_kwargs={"texts": texts, "tokenize": tokenizer, "targets": targets, "swaps": swaps},
    )


def _split_rows(store: DatasetStore, table: str, columns: list[str], texts: dict[str, str]) -> ray.data.Dataset:
    """The rows of one split: Ray pushes the column selection and the key filter down into the Parquet read, so
    other splits' rows never reach a prepare task or the object store."""
    rows = read_rows(store, table, columns)
    return rows.filter(expr=col(columns[0]).is_in(sorted(texts)))


def split_stream(
    exp: ExperimentConfig,
    store: DatasetStore,
    texts: dict[str, str],
    tokenizer: TextTokenizer,
    targets: Targets | None = None,
    volumes: bool | None = None,
    swaps: ExamSwaps | None = None,
) -> ray.data.Dataset:
    """The stream a run trains (or validates) on: volumes for a 3D encoder, images for a 2D one (a model of both
    says which with `volumes`); with `targets` when the objective trains a report decoder, and `swaps` (a model
    of both, training) for the examination-swapped hard negatives.

    A stream never mixes the two, so no batch does (RadFM's sampler keeps 2D and 3D batches apart too).
    """
    if volumes if volumes is not None else exp.model.image.spatial_dims == 3:
        return volume_stream(store, texts, tokenizer, targets, swaps)
    return image_stream(store, texts, tokenizer, exp.model.image.input_size, targets, swaps)


def kept_train_stream(
    exp: ExperimentConfig, stream: ray.data.Dataset, items: int, item_shape: tuple[int, ...]
) -> ray.data.Dataset:
    """The training stream, prepared once and kept in the object store when the split fits
    `train.cache_gb` (and a quarter of the store): epochs then start at once instead of re-reading every
    split's pixel rows, filtering and re-preparing them (the trainer waited at every epoch boundary). A
    larger split streams every epoch. Augmentation runs in the train loop, so kept images are not frozen.

    `item_shape`: one prepared model input ([1, side, side] for a radiograph, [3, D, H, W] for a volume): a
    few hundred small volumes are kept too, where a split of large ones streams."""
    text = 2 * exp.model.text.max_length  # ids and mask
    tokens = text * (2 if exp.model.mixed else 1) + (exp.model.decoder.max_length if exp.model.writes_reports else 0)
    needed = items * (4 * math.prod(item_shape) + 4 * tokens)
    budget = min(exp.train.cache_gb * 1024**3, 0.25 * ray.cluster_resources().get("object_store_memory", 0))
    budget /= 2 if exp.model.mixed else 1  # a model of both keeps two streams within one budget
    return stream.materialize() if needed <= budget else stream


def input_shape(exp: ExperimentConfig, view: TrainingView, volumes: bool) -> tuple[int, ...]:
    """The shape of one prepared model input of the view: a radiograph's, or its volume profiles' (one size)."""
    if not volumes:
        return (1, exp.model.image.input_size, exp.model.image.input_size)
    names = [name for name in view.profile.rpartition("+")[2].split(",") if name]
    return (3, *get_volume_profile(names[0]).size)


def fit(
    exp: ExperimentConfig,
    store: DatasetStore,
    view: TrainingView,
    tokenizer: TextTokenizer,
    loop_config: dict[str, Any],
    storage: str,
    run_name: str,
    report_tokenizer: Any = None,
) -> FitResult:
    """Run the train loop on `num_workers` workers, restarting from checkpoints up to `max_failures` times.

    `report_tokenizer` (radpipe.model.report_text.ReportTokenizer) is needed when the objective writes reports.
    """

    def stream(split: str, volumes: bool | None) -> ray.data.Dataset:
        texts = view.texts[split] if volumes is None else view.modality_texts(split, volumes)
        targets = None
        if exp.model.writes_reports:
            by_key = view.targets[split] if volumes is None else view.modality_targets(split, volumes)
            targets = Targets(by_key, report_tokenizer)
        swaps = None
        if volumes is not None and split == "train":  # a model of both trains with swapped examinations
            swaps = ExamSwaps({k: view.swaps[split][k] for k in texts}, tokenizer)
        return split_stream(exp, store, texts, tokenizer, targets, volumes, swaps)

    # A model of radiographs and volumes trains on two streams, "train" (radiographs) and "train_volumes".
    modalities: dict[str, bool | None] = {"": None} if not exp.model.mixed else {"": False, "_volumes": True}
    datasets: dict[str, Any] = {}
    val_datasets = []
    for suffix, volumes in modalities.items():
        count = len(view.texts["train"] if volumes is None else view.modality_texts("train", volumes))
        shape = input_shape(exp, view, exp.model.image.spatial_dims == 3 if volumes is None else volumes)
        datasets["train" + suffix] = kept_train_stream(exp, stream("train", volumes), count, shape)
        validation = view.texts.get("validation", {})
        if len(validation if volumes is None else view.modality_texts("validation", volumes)) >= 2:
            # Evaluated every `val_every` steps on the same rows (in-batch retrieval needs two): prepared once
            # and kept in the object store.
            batch = (exp.train.volume_batch_size or exp.train.batch_size) if volumes else exp.train.batch_size
            val_rows = exp.train.val_batches * batch
            datasets["val" + suffix] = stream("validation", volumes).limit(val_rows).materialize()
            val_datasets.append("val" + suffix)
    scaling = exp.scaling
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={**loop_config, "experiment": exp.model_dump(), "val_datasets": val_datasets},
        scaling_config=ray.train.ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker={"CPU": scaling.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=[name for name in datasets if name.startswith("train")]),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise TrainingFailed(f"training failed after {scaling.max_failures} restart(s): {_first_line(exc)}") from None
    if result.checkpoint is None:
        raise TrainingFailed("training ended without a checkpoint")
    metrics = result.metrics or {}
    with result.checkpoint.as_directory() as folder:  # a local copy, also when storage is s3:// or gs://
        state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
    return FitResult(
        model_state=state["model"],
        steps=int(metrics.get("step", exp.train.steps)),
        resumed_from_step=int(metrics.get("resumed_from_step", 0)),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__
