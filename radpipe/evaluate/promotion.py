"""Gated promotion: a model version becomes `@champion` only if it beats the champion on the same data.

Both numbers come from evaluations on the same dataset version (run now if missing); the decision and
both numbers are tagged on the candidate version. Promotions of one registered model are serialised by a
lock, so two at once cannot both read "no champion" and leave the worse one holding the alias.
"""

from __future__ import annotations

import fcntl
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radpipe.dataset.store import DatasetStore
from radpipe.errors import ConfigError
from radpipe.ops.facts import RunFacts, summary_record
from radpipe.quality.status import require_validated
from radpipe.settings import Settings

DEFAULT_METRIC = "zeroshot_auroc_macro"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def higher_is_better(metric: str) -> bool:
    """The direction of a promotion metric; ConfigError for one that cannot rank models."""
    if metric.endswith(("_ci_low", "_ci_high")):
        raise ConfigError(f"promote on a point estimate, not an interval bound ({metric})")
    if metric.startswith("volume_") and metric != "volume_modality_accuracy":
        return higher_is_better(metric.removeprefix("volume_"))  # a model of both: the metric on its CT/MR series
    if metric.startswith("retrieval_") and metric.endswith("_median_rank"):
        return False
    if metric.startswith(("zeroshot_auroc_", "probe_auroc_", "retrieval_", "generation_")):
        return True
    if metric in ("reasoning_consistency", "modality_accuracy"):
        return True
    raise ConfigError(
        f"unknown promotion metric {metric!r}: use zeroshot_auroc_macro, zeroshot_auroc_<finding>, probe_auroc_macro, "
        "retrieval_<image_to_text|text_to_image>_recall_at_<1|5|10> or ..._median_rank, generation_f1_macro, "
        "generation_bleu4, generation_rougeL, reasoning_consistency, modality_accuracy, or volume_<any of these>"
    )


def decide(
    candidate: float, champion: float | None, min_improvement: float = 0.0, higher_better: bool = True
) -> Decision:
    """Promote when there is no champion, or the candidate beats it by more than `min_improvement` (ties stay)."""
    if min_improvement < 0:
        raise ConfigError(f"--min-improvement must be 0 or more, got {min_improvement:g}")
    if math.isnan(candidate):
        return Decision(False, "the candidate's metric is undefined on this dataset")
    if champion is None:
        return Decision(True, "there is no champion yet")
    margin = candidate - champion if higher_better else champion - candidate
    if math.isnan(champion) or margin > min_improvement:
        return Decision(True, f"{candidate:.4f} beats the champion's {champion:.4f}")
    return Decision(False, f"{candidate:.4f} does not beat the champion's {champion:.4f} (by > {min_improvement:g})")


@dataclass
class PromotionSummary:
    model_uri: str  # the candidate, pinned
    promoted: bool
    reason: str
    metric: str
    dataset_version: str
    candidate_value: float
    champion_uri: str | None  # the champion when the decision was taken
    champion_value: float | None

    @property
    def champion_now(self) -> str | None:
        return self.model_uri if self.promoted else self.champion_uri

    def facts(self) -> RunFacts:
        return RunFacts(dataset_version=self.dataset_version, champion=self.champion_now)

    def record(self) -> dict[str, Any]:
        return summary_record(self, self.facts(), champion_now=self.champion_now)

    def markdown(self) -> str:
        """The decision as a Markdown artifact: both numbers, the reason, and who holds @champion now."""
        champion = "" if self.champion_value is None else f"{self.champion_value:.4f}"
        return (
            f"# Promotion: `{self.model_uri}` {'promoted to @champion' if self.promoted else 'not promoted'}\n\n"
            f"{self.metric} on dataset {self.dataset_version}: candidate {self.candidate_value:.4f}, "
            f"champion {self.champion_uri or 'none'} {champion}.\n\n"
            f"Reason: {self.reason}. Champion now: `{self.champion_now}`.\n"
        )


@contextmanager
def promotion_lock(
    home: Path, model_name: str, on_wait: Callable[[str], None] = lambda _message: None
) -> Iterator[None]:
    """An exclusive lock per registered model under RADPIPE_HOME (one machine; see README for a cluster);
    `on_wait` hears once that another promotion holds it before this one waits."""
    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"promote-{model_name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(f"waiting for another promotion of {model_name} to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def promote(
    model_uri: str,
    dataset: str,
    settings: Settings,
    metric: str = DEFAULT_METRIC,
    alias: str = "champion",
    min_improvement: float = 0.0,
    on_status: Callable[[str], None] | None = None,
) -> PromotionSummary:
    """Compare the candidate with the alias holder on this dataset version; move the alias if it wins."""
    from radpipe import tracking

    status = on_status or (lambda _message: None)
    higher_better = higher_is_better(metric)  # a bad metric or margin fails before any model is loaded
    decide(0.0, None, min_improvement)
    version = require_validated(DatasetStore(dataset))
    tracking.configure(settings)
    candidate = tracking.resolve_model(model_uri)
    if not (candidate.name and candidate.version):
        raise ConfigError(f"promotion needs a registered model version (models:/<name>/<version>), got {model_uri}")
    with promotion_lock(settings.home, candidate.name, status):
        champion = tracking.alias_holder(candidate.name, alias)
        candidate_value = _metric_on(candidate.pinned, dataset, version, metric, settings, status)
        champion_value = None
        if champion is not None and champion.version == candidate.version:
            decision = Decision(False, f"already @{alias}")
        else:
            if champion is not None:
                champion_value = _metric_on(champion.pinned, dataset, version, metric, settings, status)
            decision = decide(candidate_value, champion_value, min_improvement, higher_better)
        if decision.promote:
            tracking.set_alias(candidate.name, alias, candidate.version)
        tracking.set_version_tags(
            candidate.name,
            candidate.version,
            {
                f"promotion.{alias}.decision": "promoted" if decision.promote else "not promoted",
                f"promotion.{alias}.reason": decision.reason,
                f"promotion.{alias}.metric": metric,
                f"promotion.{alias}.dataset_version": version,
                f"promotion.{alias}.candidate_value": f"{candidate_value:.6f}",
                f"promotion.{alias}.champion_version": (champion.version if champion else None) or "none",
                f"promotion.{alias}.champion_value": "none" if champion_value is None else f"{champion_value:.6f}",
                f"promotion.{alias}.decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    verdict = "promoted to" if decision.promote else "not promoted to"
    status(f"{candidate.pinned}: {verdict} @{alias}: {decision.reason}")
    return PromotionSummary(
        candidate.pinned,
        decision.promote,
        decision.reason,
        metric,
        version,
        candidate_value,
        champion.pinned if champion else None,
        champion_value,
    )


def _metric_on(
    model_uri: str, dataset: str, version: str, metric: str, settings: Settings, status: Callable[[str], None]
) -> float:
    """The metric from the model's evaluation on this dataset version, evaluating it first if there is none."""
    from radpipe import tracking
    from radpipe.evaluate.protocol import protocol_digest, version_tag
    from radpipe.evaluate.run import evaluate

    ref = tracking.resolve_model(model_uri)
    run_id = ref.tags.get(version_tag(version, "run_id"))
    same_protocol = ref.tags.get(version_tag(version, "protocol")) == protocol_digest(0)
    metrics = tracking.run_metrics(run_id) if run_id and same_protocol else None
    if metrics is None:
        status(f"{model_uri} has no evaluation on dataset {version} with this evaluation code: evaluating it now")
        metrics = evaluate(model_uri, dataset, settings, on_status=status).metrics
    if metric not in metrics:
        known = ", ".join(sorted(k for k in metrics if not k.endswith(("_ci_low", "_ci_high")))[:8])
        raise ConfigError(f"no metric {metric!r} in the evaluation of {model_uri}; some that exist: {known}")
    return float(metrics[metric])
