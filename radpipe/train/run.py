"""`radpipe train`: a validated dataset version in, a registered foundation model out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from radpipe.curate.splits import SPLITS
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, RadpipeError, SourceError
from radpipe.model.config import ExperimentConfig
from radpipe.model.report_text import ReportTokenizer, train_report_tokenizer
from radpipe.model.text import TextTokenizer, train_tokenizer
from radpipe.ops.facts import RunFacts, metric_values, summary_record
from radpipe.preprocess.profile import get_profile
from radpipe.preprocess.volume import VOLUME_PROFILES, get_volume_profile
from radpipe.quality.status import require_validated
from radpipe.settings import Settings
from radpipe.train.data import TrainingView, mixed_view, training_view, volume_view


@dataclass
class TrainSummary:
    run_id: str
    model_uri: str
    model_version: str
    dataset_version: str
    profile: str
    steps: int
    resumed_from_step: int
    images: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def facts(self) -> RunFacts:
        return RunFacts(
            dataset_version=self.dataset_version,
            metrics=metric_values(self.metrics),
            mlflow_run_id=self.run_id,
            model_versions=(self.model_uri,),
        )

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts())

    def markdown(self) -> str:
        """The run as a Markdown artifact: model, MLflow run, steps, then the last value of every metric."""
        metrics = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(metric_values(self.metrics).items()))
        return (
            f"# Pretraining on dataset {self.dataset_version}\n\n"
            f"Model `{self.model_uri}`, MLflow run `{self.run_id}`, profile `{self.profile}`, "
            f"{self.steps} steps (resumed from {self.resumed_from_step}).\n\n"
            "| metric | last value |\n|---|---|\n" + metrics
        )


def select_view(store: DatasetStore, exp: ExperimentConfig) -> TrainingView:
    """The images, the volumes, or (a model of both) the two, paired with their report text."""
    reasoning = exp.train.text.rationale == "include"
    if exp.model.mixed:
        return mixed_view(store, reasoning)
    if exp.model.image.spatial_dims == 3:
        return volume_view(store, reasoning)
    return training_view(store, reasoning)


def check_trainable(view: TrainingView, exp: ExperimentConfig) -> None:
    """The config fits the data, and there is enough of it for one global batch; else a clear error now."""
    image = exp.model.image
    if exp.model.mixed:
        _check_mixed(view, exp)  # a batch of each modality
        return
    if image.spatial_dims == 3:
        _check_volume_profiles(view.profile, exp)
    else:
        _check_image_size(view.profile, exp)
    need = exp.train.batch_size * exp.scaling.num_workers
    have = view.count("train")
    if have < need:
        what = "volume(s)" if image.spatial_dims == 3 else "image(s)"
        raise SourceError(
            f"the train split has {have} {what} with a report; one batch over "
            f"{exp.scaling.num_workers} worker(s) needs {need}: lower train.batch_size or add data"
        )


def _check_mixed(view: TrainingView, exp: ExperimentConfig) -> None:
    image_profile, volume_profiles = view.profile.split("+")
    _check_image_size(image_profile, exp)
    _check_volume_profiles(volume_profiles, exp)
    batches = {False: exp.train.batch_size, True: exp.train.volume_batch_size or exp.train.batch_size}
    for volumes, batch in batches.items():
        need, have = batch * exp.scaling.num_workers, len(view.modality_texts("train", volumes))
        if have < need:
            what = "volume(s)" if volumes else "image(s)"
            raise SourceError(
                f"the train split has {have} {what} with a report; a model of radiographs and volumes needs a batch "
                f"of each ({need} over {exp.scaling.num_workers} worker(s)): lower the batch size or add data"
            )


def _check_volume_profiles(profile: str, exp: ExperimentConfig) -> None:
    image = exp.model.image
    names = [name for name in profile.split(",") if name]
    if not names or any(name not in VOLUME_PROFILES for name in names):
        raise ConfigError(
            f"model.image.spatial_dims 3 trains on CT/MR volumes; this view holds {profile or 'none'} images"
        )
    sizes = {get_volume_profile(name).size for name in names}
    cube = (image.input_size,) * 3
    if image.arch == "vit" and sizes != {cube}:
        raise ConfigError(
            f"a 3D ViT takes volumes of {cube[0]} voxels on every side; the volume profiles {profile} "
            "give other sizes: use arch resnet, or ingest with a cubic profile"
        )
    if len(sizes) > 1:
        raise ConfigError(
            f"the volumes were resampled with profiles of different sizes ({profile}): one batch needs one "
            "size; re-ingest with --ct-profile/--mr-profile of one size"
        )


def _check_image_size(profile_name: str, exp: ExperimentConfig) -> None:
    image = exp.model.image
    profile = get_profile(profile_name)
    if image.input_size > min(profile.size):
        raise ConfigError(
            f"model.image.input_size {image.input_size} is above the dataset's profile {profile.name} "
            f"({profile.size[0]}x{profile.size[1]}): images would be upsampled; ingest with a larger profile"
        )


def check_cluster_settings(settings: Settings, checkpoints: bool = True) -> None:
    """On a Ray cluster, workers on other nodes must reach the MLflow store and (`checkpoints`: training) the
    checkpoint storage."""
    if not settings.ray_address:
        return
    if settings.mlflow_tracking_uri is None:
        raise ConfigError(
            "RAY_ADDRESS is set but MLFLOW_TRACKING_URI is not: workers on other nodes cannot reach the local "
            "SQLite file; point MLFLOW_TRACKING_URI at a tracking server"
        )
    if checkpoints and settings.radpipe_ray_storage is None:
        raise ConfigError(
            "RAY_ADDRESS is set but RADPIPE_RAY_STORAGE is not: set it to storage every node reaches "
            "(s3://bucket/path or a shared mount) for checkpoints"
        )


def build_tokenizer(view: TrainingView, exp: ExperimentConfig) -> tuple[TextTokenizer, str | None]:
    """The local text checkpoint's tokenizer, or one trained on the train split's reports (and its JSON)."""
    if exp.model.text.checkpoint:
        return TextTokenizer(exp.model.text), None
    text = exp.model.text
    learnt = train_tokenizer(view.texts["train"].values(), text.vocab_size, text.min_report_frequency).to_str()
    return TextTokenizer(exp.model.text, learnt), learnt


def build_report_tokenizer(view: TrainingView, exp: ExperimentConfig) -> tuple[ReportTokenizer, str] | None:
    """The report decoder's vocabulary, trained on the train split's targets (None for a contrastive model)."""
    if not exp.model.writes_reports:
        return None
    decoder = exp.model.decoder
    learnt = train_report_tokenizer(view.targets["train"].values(), decoder, exp.model.text.min_report_frequency)
    return ReportTokenizer(learnt, decoder.max_length), learnt


def _start_run(
    exp: ExperimentConfig,
    dataset: str,
    version: str,
    profile: str,
    vocab_size: int,
    images: dict[str, int],
    tags: dict[str, str],
) -> str:
    """The run: the whole config and the data it reads as params, the dataset version as its input."""
    from radpipe import tracking

    params = {
        **tracking.flatten(exp.model_dump(mode="json")),
        "dataset_uri": dataset,
        "dataset_version": version,
        "profile": profile,
        "vocab_size": str(vocab_size),
        **{f"images_{split}": str(n) for split, n in images.items()},
    }
    run_id = tracking.start_run(exp.name, f"pretrain-{version}", params, tags)
    tracking.log_dataset_input(run_id, dataset, version, profile, images)
    return run_id


def train(
    dataset: str, exp: ExperimentConfig, settings: Settings, on_status: Callable[[str], None] | None = None
) -> TrainSummary:
    """Validate-gated pretraining on Ray Train, tracked in MLflow, registered as `exp.registered_model`."""
    from radpipe import tracking
    from radpipe.model.package import log_foundation_model
    from radpipe.train.ray import ensure_ray, fit

    status = on_status or (lambda _message: None)
    check_cluster_settings(settings)
    store = DatasetStore(dataset)
    version = require_validated(store)  # never train on data that has not passed its suites
    view = select_view(store, exp)
    if view.unsplit:
        status(f"{view.unsplit} image(s) have no split yet (ingested after the last curate) and are left out")
    check_trainable(view, exp)
    tokenizer, tokenizer_json = build_tokenizer(view, exp)
    writer = build_report_tokenizer(view, exp)
    report_tokenizer, report_tokenizer_json = writer if writer else (None, None)
    images = {split: view.count(split) for split in SPLITS}
    status(f"dataset {version}: {images['train']} training images with reports, profile {view.profile}")

    tracking_uri = tracking.configure(settings)
    tags = {"dataset_version": version, "profile": view.profile, "git_commit": tracking.git_commit()}
    run_id = _start_run(exp, dataset, version, view.profile, tokenizer.vocab_size, images, tags)
    status(f"MLflow run {run_id} at {tracking.display_uri(tracking_uri)}")
    try:
        logs = ensure_ray(settings.ray_address, exp, settings.home / "ray")
        if logs:
            status(f"Ray's logs (workers' step lines included): {logs}")
        with training_progress(run_id, exp.train.steps, status):
            result = fit(
                exp,
                store,
                view,
                tokenizer,
                {
                    "vocab_size": tokenizer.vocab_size,
                    "decoder_vocab_size": report_tokenizer.vocab_size if report_tokenizer else None,
                    "tracking_uri": tracking_uri,
                    "run_id": run_id,
                },
                storage=settings.ray_storage,
                run_name=run_id,
                report_tokenizer=report_tokenizer,
            )
    except BaseException:
        tracking.fail_run(run_id)
        raise

    version_number, model_uri = log_foundation_model(
        run_id,
        exp.model,
        view.profile,
        result.model_state,
        tokenizer_json,
        exp.registered_model,
        tags,
        report_tokenizer_json=report_tokenizer_json,
    )
    status(f"registered {model_uri}")
    return TrainSummary(
        run_id=run_id,
        model_uri=model_uri,
        model_version=version_number,
        dataset_version=version,
        profile=view.profile,
        steps=result.steps,
        resumed_from_step=result.resumed_from_step,
        images=images,
        metrics=tracking.run_metrics(run_id),
    )


@contextmanager
def training_progress(run_id: str, steps: int, status: Callable[[str], None], every: float = 10.0) -> Iterator[None]:
    """While training runs, a line every `every` seconds with the last logged step and loss (read from MLflow,
    where rank 0 logs them): the workers' own output goes to Ray's log files, not the terminal."""
    stop = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        from radpipe import tracking

        shown = 0
        while not stop.wait(every):
            try:
                history = tracking.metric_history(run_id, "train_loss")
            except RadpipeError:  # the store is busy or away for a moment: the next poll tries again
                continue
            if history and history[-1][0] > shown:
                shown, loss = history[-1]
                status(f"training: step {shown}/{steps}, train_loss {loss:.3f}, {time.monotonic() - started:.0f} s")

    watcher = threading.Thread(target=watch, name="training-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=every)
