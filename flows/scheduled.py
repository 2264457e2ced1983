"""The two scheduled chains (infra/prefect.yaml): nightly ingest + PHI gate + validation, and weekly
train + evaluate + promote. Each runs existing flows as subflows, so each step keeps its own page, retries
and artifacts.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.evaluate import evaluate_promote_flow
from flows.ingest import ingest_flow
from flows.ops import record_ops
from flows.quality import curate_validate_flow
from flows.train import train_flow
from radpipe.ops.facts import RunFacts, joined
from radpipe.preprocess.profile import DEFAULT_PROFILE


@flow(name="nightly-ingest", on_completion=[record_ops], on_failure=[record_ops])
def nightly_ingest_flow(
    dicom: str | None, reports: str | None, dataset: str, profile: str = DEFAULT_PROFILE
) -> dict[str, Any]:
    """New files of the night into the dataset (PHI gate included), then curate and validate the new version."""
    ingest = ingest_flow(dicom, reports, dataset, profile)
    quality = curate_validate_flow(dataset)
    facts = joined([ingest, quality])
    return {"ingest": ingest, "validation": quality["validation"], "facts": facts.record()}


@flow(name="weekly-train", on_completion=[record_ops], on_failure=[record_ops])
def weekly_train_flow(dataset: str, config: str | None = None, metric: str | None = None) -> dict[str, Any]:
    """Pretrain on the last validated dataset version, evaluate, and promote if the new model wins."""
    trained = train_flow(dataset, config)
    judged = evaluate_promote_flow(trained["model_uri"], dataset, metric)
    # The row keeps the training run's numbers; the evaluation's are on its own row and the model version.
    facts = joined([trained]).then(RunFacts(champion=judged["promotion"]["champion_now"]))
    return {
        "trained": trained,
        "evaluation": judged["evaluation"],
        "promotion": judged["promotion"],
        "facts": facts.record(),
    }
