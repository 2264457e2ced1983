"""`radpipe finetune`: a registered foundation model and a validated dataset in, a registered classifier out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from radpipe.dataset.profiles import dataset_profile
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError
from radpipe.evaluate.data import embed_images_of, labelled_split
from radpipe.finetune.classifier import probabilities
from radpipe.finetune.config import FinetuneConfig, finding_label, registered_name
from radpipe.finetune.data import FindingRows, evaluation_rows, features_of, training_rows
from radpipe.finetune.loop import auroc_metrics, train_classifier
from radpipe.model.embedder import Embedder
from radpipe.ops.facts import RunFacts, metric_values, summary_record
from radpipe.quality.status import require_validated
from radpipe.settings import Settings

if TYPE_CHECKING:
    from radpipe.tracking.registry import ModelRef

# Losses logged per run at most: a curve, not a row per epoch of a long run.
LOSS_POINTS = 50


@dataclass
class FinetuneSummary:
    run_id: str
    model_name: str  # radpipe-<finding>
    model_version: str
    model_uri: str  # pinned: models:/<name>/<version>
    parent_uri: str  # pinned, even when given as an alias
    parent_name: str | None
    parent_version: str | None
    dataset_version: str
    label: str
    mode: str
    shots: int | None
    metrics: dict[str, float] = field(default_factory=dict)

    def facts(self) -> RunFacts:
        return RunFacts(
            dataset_version=self.dataset_version, metrics=metric_values(self.metrics), model_versions=(self.model_uri,)
        )

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts())

    def markdown(self) -> str:
        """The fine-tune as a Markdown artifact: the model, its parent, its mode, then every metric."""
        metrics = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(self.metrics.items()))
        return (
            f"# Fine-tune for {self.label} on dataset {self.dataset_version}\n\n"
            f"Model `{self.model_uri}` from `{self.parent_uri}`, MLflow run `{self.run_id}`, "
            f"mode {self.mode}, shots {self.shots if self.shots is not None else 'all'}.\n\n"
            "| metric | value |\n|---|---|\n" + metrics
        )


def check_foundation(loaded: Any, uri: str, profile: str) -> tuple[Embedder, dict[str, str]]:
    """The parent's embedder and artifact files, if it is a radpipe model that takes radiographs (2D, or of
    radiographs and volumes) of the dataset's image profile."""
    embedder, artifacts = getattr(loaded, "embedder", None), getattr(loaded, "artifacts", None)
    if not isinstance(embedder, Embedder) or not isinstance(artifacts, dict):
        raise ConfigError(f"{uri} is not a radpipe foundation model (no image encoder to fine-tune)")
    if not embedder.radiographs:
        raise ConfigError(f"{uri} is a 3D model; fine-tuning reads images/ (2D) only")
    if embedder.image_profile != profile:
        raise ConfigError(
            f"{uri} was trained on profile {embedder.spec.profile}, the dataset holds {profile}: "
            "fine-tune on data ingested with the model's profile"
        )
    return embedder, artifacts


def finetune(
    model_uri: str,
    dataset: str,
    label: str,
    config: FinetuneConfig,
    settings: Settings,
    on_status: Callable[[str], None] | None = None,
) -> FinetuneSummary:
    """Train, measure and register a `radpipe-<finding>` classifier on a foundation model's image encoder."""
    from radpipe import tracking

    status = on_status or (lambda _message: None)
    label = finding_label(label)
    store = DatasetStore(dataset)
    version = require_validated(store)  # never learn from, or report numbers on, data that failed its suites
    profile = dataset_profile(store)
    train = training_rows(labelled_split(store, "train"), label, config.shots, config.seed)
    test = evaluation_rows(labelled_split(store, "test"), label)

    tracking_uri = tracking.configure(settings)
    parent = tracking.resolve_model(model_uri)
    # The pinned version, not the alias: `champion` may move while this runs, the lineage must not.
    embedder, parent_artifacts = check_foundation(tracking.load_python_model(parent.pinned), parent.pinned, profile)
    name = registered_name(label)
    tags, params = _lineage(config, label, parent, dataset, version, profile)
    run_id = tracking.start_run(config.experiment, f"finetune-{name}-{version}", params, tags)
    status(
        f"fine-tuning {label} ({config.mode}) on {parent.pinned}: {train.positives} positive and "
        f"{train.negatives} negative train images of dataset {version}"
        f"; MLflow run {run_id} at {tracking.display_uri(tracking_uri)}"
    )
    try:
        tracking.log_dataset_input(run_id, dataset, version, profile, {"train": len(train), "test": len(test)})
        classifier, metrics = _train_and_measure(store, embedder, train, test, config, tracking_uri, run_id)
        status(f"test AUROC {metrics['finetune_auroc']:.3f} on {len(test)} images; registering {name}")
        number, uri = _register(run_id, parent_artifacts, embedder, classifier, metrics, name, tags)
    except BaseException:
        tracking.fail_run(run_id)
        raise
    status(f"registered {uri}")
    return FinetuneSummary(
        run_id=run_id,
        model_name=name,
        model_version=number,
        model_uri=uri,
        parent_uri=parent.pinned,
        parent_name=parent.name,
        parent_version=parent.version,
        dataset_version=version,
        label=label,
        mode=config.mode,
        shots=config.shots,
        metrics=metrics,
    )


def _lineage(
    config: FinetuneConfig, label: str, parent: ModelRef, dataset: str, version: str, profile: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The run's and the model version's tags, and the run's params: the parent, the data, the recipe."""
    from radpipe import tracking

    tags = {
        "parent_model": parent.pinned,
        "parent_version": parent.version or "none",
        "dataset_version": version,
        "label": label,
        "mode": config.mode,
        "shots": str(config.shots) if config.shots is not None else "all",
        "profile": profile,
        "git_commit": tracking.git_commit(),
    }
    params = {
        **tracking.flatten(config.model_dump(mode="json")),
        "label": label,
        "parent_model": parent.pinned,
        "dataset_uri": dataset,
        "dataset_version": version,
        "profile": profile,
    }
    return tags, params


def _train_and_measure(
    store: DatasetStore,
    embedder: Embedder,
    train: FindingRows,
    test: FindingRows,
    config: FinetuneConfig,
    tracking_uri: str,
    run_id: str,
) -> tuple[Any, dict[str, float]]:
    """Train the head (and, partly unfrozen, the encoder), logging the loss curve; then its test AUROC."""
    from radpipe import tracking

    features = features_of(store, train.rows, embedder, config.mode)
    stride = max(1, config.epochs // LOSS_POINTS)
    logger = tracking.MetricLogger(tracking_uri, run_id, system_metrics=False)
    try:

        def on_epoch(epoch: int, loss: float) -> None:
            if epoch % stride == 0 or epoch == config.epochs:
                logger.log({"finetune_train_loss": loss}, epoch)

        classifier, losses = train_classifier(embedder.model, features, train.targets, config, on_epoch)
    finally:
        logger.close()
    # Measured through the serving path: the whole (fine-tuned) encoder, as `predict` runs it.
    scores = probabilities(classifier.head, embed_images_of(store, test.rows, embedder))
    metrics = auroc_metrics(test.targets, scores, config.resamples, config.seed, groups=test.rows.studies)
    metrics |= {
        "finetune_train_positives": float(train.positives),
        "finetune_train_negatives": float(train.negatives),
        "finetune_test_positives": float(test.positives),
        "finetune_test_negatives": float(test.negatives),
        "finetune_train_loss": losses[-1],
    }
    return classifier, metrics


def _register(
    run_id: str,
    parent_artifacts: dict[str, str],
    embedder: Embedder,
    classifier: Any,
    metrics: dict[str, float],
    name: str,
    tags: dict[str, str],
) -> tuple[str, str]:
    """Register the classifier as the next version of `name`; its version number and pinned URI."""
    from radpipe import tracking
    from radpipe.finetune.package import log_finding_model

    label, profile, mode = tags["label"], tags["profile"], tags["mode"]
    model_state = embedder.model.state_dict() if mode == "partial" else None
    number, uri = log_finding_model(
        run_id, parent_artifacts, model_state, classifier.head.state_dict(), label, profile, name, tags
    )
    # The scores also go against the logged model, so they show on the registered version's page; the loss
    # is a curve, logged above.
    scores = {k: v for k, v in metrics.items() if k != "finetune_train_loss"}
    tracking.log_results(run_id, scores, model_id=tracking.resolve_model(uri).model_id)
    return number, uri
