"""The whole chain as one Prefect flow: ingest -> PHI gate -> curate + validate -> train -> evaluate ->
promote -> fine-tune. Each step is its own flow (a subflow here), so each also runs and deploys alone.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.evaluate import evaluate_promote_flow
from flows.finetune import finetune_flow
from flows.ingest import ingest_flow
from flows.ops import record_ops
from flows.quality import curate_validate_flow
from flows.train import train_flow
from radpipe.commands import DEFAULT_FINETUNES, check_chain_arguments
from radpipe.ops.facts import chain_facts
from radpipe.preprocess.profile import DEFAULT_PROFILE


@flow(name="pipeline", on_completion=[record_ops], on_failure=[record_ops])
def pipeline_flow(
    dicom: str | None,
    reports: str | None,
    dataset: str,
    config: str | None = None,
    finetune_labels: list[str] | None = None,
    shots: int | None = None,
    metric: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> dict[str, Any]:
    """Archive in; a validated dataset, a trained and evaluated model, the champion and its fine-tunes out.

    Fine-tunes start from @champion: the new model if it won promotion, else the champion it did not beat.
    """
    labels = list(DEFAULT_FINETUNES if finetune_labels is None else finetune_labels)
    # A deployment's run starts here: a typo should cost a second, not the whole chain.
    check_chain_arguments(labels, shots, metric, profile, config)
    ingest = ingest_flow(dicom, reports, dataset, profile)
    quality = curate_validate_flow(dataset)
    trained = train_flow(dataset, config)
    judged = evaluate_promote_flow(trained["model_uri"], dataset, metric)
    champion = judged["promotion"]["champion_now"]
    finetunes = [finetune_flow(champion, dataset, label, shots) for label in labels]
    return {
        "ingest": ingest,
        "validation": quality["validation"],
        "trained": trained,
        "evaluation": judged["evaluation"],
        "promotion": judged["promotion"],
        "champion": champion,
        "finetunes": finetunes,
        "facts": chain_facts(ingest, quality, trained, finetunes, champion).record(),
    }
