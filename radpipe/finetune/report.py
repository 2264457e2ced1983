"""`radpipe finetune ... --task report`: a generative foundation model's report decoder adapted to a dataset's
report style on a small set of its studies; registered as `radpipe-report`, measured before and after.

The image encoder stays frozen (its tokens are computed once), so a few hundred studies adapt the decoder in
seconds to minutes on a CPU; the vocabulary is the parent's (a new word is written in word pieces).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radpipe.dataset.profiles import dataset_profile
from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError, SourceError
from radpipe.evaluate.data import LabelledSplit, labelled_split, model_inputs_of, reference_sections_of
from radpipe.evaluate.generation import generation_metrics
from radpipe.finetune.config import FinetuneConfig
from radpipe.model.coca import CoCaModel, caption_loss
from radpipe.model.embedder import Embedder
from radpipe.model.report_text import target_text
from radpipe.ops.facts import RunFacts, metric_values, summary_record
from radpipe.quality.status import require_validated
from radpipe.settings import Settings

REGISTERED = "radpipe-report"  # CONTRACT.md: fine-tunes register as radpipe-<task>
# Headline figures of the written reports, measured on the test split before and after the fine-tune.
SHOWN = ("generation_f1_macro", "generation_bleu4", "generation_rougeL")


@dataclass
class ReportFinetuneSummary:
    run_id: str
    model_uri: str  # pinned: models:/radpipe-report/<version>
    model_version: str
    parent_uri: str
    dataset_version: str
    studies: int  # train studies the decoder learnt from
    metrics: dict[str, float] = field(default_factory=dict)

    def facts(self) -> RunFacts:
        return RunFacts(
            dataset_version=self.dataset_version, metrics=metric_values(self.metrics), model_versions=(self.model_uri,)
        )

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts())

    def markdown(self) -> str:
        rows = "\n".join(
            f"| {k} | {self.metrics[k + '_before']:.3f} | {self.metrics[k]:.3f} |" for k in SHOWN if k in self.metrics
        )
        return (
            f"# Report fine-tune on dataset {self.dataset_version}\n\n"
            f"Model `{self.model_uri}` from `{self.parent_uri}`, {self.studies} train studies, "
            f"MLflow run `{self.run_id}`.\n\n| metric | before | after |\n|---|---|---|\n{rows}\n"
        )


def finetune_report(
    model_uri: str,
    dataset: str,
    config: FinetuneConfig,
    settings: Settings,
    on_status: Callable[[str], None] | None = None,
) -> ReportFinetuneSummary:
    """Adapt the decoder of a model that writes reports to the dataset's reports; register `radpipe-report`."""
    from radpipe import tracking
    from radpipe.finetune.run import check_foundation

    status = on_status or (lambda _message: None)
    store = DatasetStore(dataset)
    version = require_validated(store)
    profile = dataset_profile(store)
    tracking_uri = tracking.configure(settings)
    parent = tracking.resolve_model(model_uri)
    embedder, artifacts = check_foundation(tracking.load_python_model(parent.pinned), parent.pinned, profile)
    if embedder.writer is None or not isinstance(embedder.model, CoCaModel):
        raise ConfigError(
            f"{parent.pinned} writes no reports (objective {embedder.spec.model.objective}); "
            "a report fine-tune needs a model trained with objective coca or captioning"
        )
    train = _one_image_per_study(labelled_split(store, "train"), config)
    test = _one_image_per_study(labelled_split(store, "test"), None)
    if len(train) < 2 or len(test) < 2:
        raise SourceError(
            f"a report fine-tune needs 2+ train and test studies with a report; found {len(train)}, {len(test)}"
        )
    tags = {
        "parent_model": parent.pinned,
        "parent_version": parent.version or "none",
        "dataset_version": version,
        "task": "report",
        "shots": str(config.shots) if config.shots is not None else "all",
        "profile": profile,
        "git_commit": tracking.git_commit(),
    }
    params = {**tracking.flatten(config.model_dump(mode="json")), "task": "report", "dataset_uri": dataset}
    run_id = tracking.start_run(config.experiment, f"finetune-report-{version}", params, tags)
    status(f"adapting the report decoder of {parent.pinned} to {len(train)} train studies of dataset {version}")
    try:
        tracking.log_dataset_input(run_id, dataset, version, profile, {"train": len(train), "test": len(test)})
        before = _scores(store, embedder, test, config)
        losses = _train_decoder(store, embedder, train, config)
        after = _scores(store, embedder, test, config)
        metrics = after | {f"{k}_before": v for k, v in before.items()} | {"report_finetune_train_loss": losses[-1]}
        logger = tracking.MetricLogger(tracking_uri, run_id, system_metrics=False)
        try:
            for epoch, loss in enumerate(losses, start=1):
                logger.log({"report_finetune_epoch_loss": loss}, epoch)
        finally:
            logger.close()
        number, uri = _register(run_id, artifacts, embedder, tags)
        tracking.log_results(run_id, metrics, model_id=tracking.resolve_model(uri).model_id)
    except BaseException:
        tracking.fail_run(run_id)
        raise
    shown = ", ".join(f"{k} {before[k]:.3f} -> {after[k]:.3f}" for k in SHOWN)
    status(f"registered {uri}: {shown}")
    return ReportFinetuneSummary(run_id, uri, number, parent.pinned, version, len(train), metrics)


def _one_image_per_study(split: LabelledSplit, config: FinetuneConfig | None) -> LabelledSplit:
    """A study's report once (its first image); with `shots`, a seeded choice of that many train studies."""
    rows = split.subset(split.first_row_per_study())
    if config is None or config.shots is None or config.shots >= len(rows):
        return rows
    chosen = np.random.default_rng(config.seed).choice(len(rows), config.shots, replace=False)
    return rows.subset(np.sort(chosen))


def _images(store: DatasetStore, embedder: Embedder, rows: LabelledSplit) -> torch.Tensor:
    position = {uid: i for i, uid in enumerate(rows.uids)}
    inputs: list[Any] = [None] * len(rows)
    for uid, model_input in model_inputs_of(store, rows.uids, embedder, rows.volumes):
        inputs[position[uid]] = model_input
    stacked = torch.from_numpy(np.stack(inputs))
    return stacked if rows.volumes else stacked[:, None]


def _scores(store: DatasetStore, embedder: Embedder, test: LabelledSplit, config: FinetuneConfig) -> dict[str, float]:
    """The written reports' metrics on the test studies (greedy), as `radpipe evaluate` computes them."""
    assert embedder.writer is not None
    images = _images(store, embedder, test)
    written = embedder.writer.write(list(images.numpy()) if test.volumes else list(images[:, 0].numpy()))
    references = reference_sections_of(store, test.studies)
    normalised = [embedder.writer.tokenizer.normalise(text) for text in test.texts]
    result = generation_metrics(
        test.texts, written, normalised, references, test.studies, config.resamples, config.seed
    )
    return {k: v for k, v in result.metrics.items() if not k.endswith(("_ci_low", "_ci_high"))}


def _train_decoder(
    store: DatasetStore, embedder: Embedder, train: LabelledSplit, config: FinetuneConfig
) -> list[float]:
    """The decoder (and its image projection) learns the train studies' reports; returns per-epoch mean losses."""
    model = embedder.model
    assert isinstance(model, CoCaModel) and embedder.writer is not None
    device = embedder.device
    targets = [target_text(s) for s in reference_sections_of(store, train.studies)]
    ids = torch.from_numpy(embedder.writer.tokenizer(targets)).long()
    with torch.no_grad():
        model.eval()
        images = _images(store, embedder, train)
        # Kept on the CPU (a ViT-B's tokens of 10^4 studies are GBs), moved a batch at a time.
        tokens = torch.cat(
            [model.image_encoder.tokens(images[i : i + 32].to(device)).cpu() for i in range(0, len(images), 32)]
        )
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.decoder.parameters(), lr=config.decoder_lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    model.decoder.train()
    for _epoch in range(config.epochs):
        order = torch.randperm(len(ids), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            target = ids[batch].to(device)
            logits = model.decoder(model.decoder.memory(tokens[batch].to(device)), target[:, :-1])
            loss = caption_loss(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.decoder.parameters(), 1.0)
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(ids))
    model.eval()
    return losses


def _register(
    run_id: str, parent_artifacts: dict[str, str], embedder: Embedder, tags: dict[str, str]
) -> tuple[str, str]:
    """The parent's package (spec, vocabularies) with the adapted weights, as the next `radpipe-report` version."""
    from radpipe import tracking
    from radpipe.model.pyfunc import INPUT_EXAMPLE, WEIGHTS, FoundationModel, signature

    with tempfile.TemporaryDirectory() as folder:
        artifacts = dict(parent_artifacts)
        artifacts[WEIGHTS] = str(Path(folder, "weights.pt"))
        torch.save(embedder.model.state_dict(), artifacts[WEIGHTS])
        return tracking.log_model(
            run_id, FoundationModel(), artifacts, signature(True), REGISTERED, tags, input_example=INPUT_EXAMPLE
        )
