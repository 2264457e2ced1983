"""The whole chain as one Prefect flow: ingest -> PHI gate -> curate + validate -> train -> evaluate ->
promote -> fine-tune. Each step is its own flow (a subflow here), so each also runs and deploys alone.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prefect import flow

from flows.evaluate import HEADLINE, evaluate_promote_flow
from flows.finetune import finetune_flow
from flows.ingest import ingest_flow
from flows.ops import record_ops
from flows.quality import curate_validate_flow
from flows.train import train_flow
from radpipe.errors import RadpipeError
from radpipe.preprocess.profile import DEFAULT_PROFILE
from radpipe.tracking import display_uri

DEFAULT_FINETUNES = ("pneumothorax",)


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
    check_arguments(labels, shots, metric, profile, config)  # a typo should cost a second, not the whole chain
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
    }


def check_arguments(labels: list[str], shots: int | None, metric: str | None, profile: str, config: str | None) -> None:
    """Everything the late steps would refuse, refused before the first one starts."""
    from radpipe.evaluate.promotion import DEFAULT_METRIC, higher_is_better
    from radpipe.finetune.config import finding_label, finetune_config
    from radpipe.model.config import load_config
    from radpipe.preprocess.profile import get_profile

    get_profile(profile)
    load_config(config)
    higher_is_better(metric or DEFAULT_METRIC)
    finetune_config(shots=shots)
    for label in labels:
        finding_label(label)


def report(result: dict[str, Any], tracking_uri: str) -> str:
    """Where to look, after the chain: the numbers, the champion, MLflow, Data Docs."""
    metrics = result["evaluation"]["metrics"]
    lines = [
        f"dataset version {result['validation']['dataset_version']}: "
        f"{result['ingest']['instances_added']} instances added, validation passed",
        f"trained {result['trained']['model_uri']} ({result['trained']['steps']} steps); "
        + ", ".join(f"{k} {metrics[k]:.3f}" for k in HEADLINE if k in metrics),
        f"promotion: {result['promotion']['reason']}; champion {result['champion']}",
    ]
    for tuned in result["finetunes"]:
        m = tuned["metrics"]
        lines.append(
            f"fine-tune {tuned['model_uri']} ({tuned['label']}): AUROC {m['finetune_auroc']:.3f} "
            f"[{m['finetune_auroc_low']:.3f}, {m['finetune_auroc_high']:.3f}]"
        )
    lines += [
        f"Data Docs: {result['validation']['data_docs']}",
        f"MLflow: mlflow ui --backend-store-uri {display_uri(tracking_uri)}   # then open http://127.0.0.1:5000",
        f"Champion: mlflow.pyfunc.load_model('models:/{_name(result['champion'])}@champion')",
    ]
    return "\n".join(lines)


def _name(model_uri: str) -> str:
    return model_uri.removeprefix("models:/").split("/")[0].split("@")[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="run the whole radpipe chain as one Prefect flow")
    parser.add_argument("--dicom", help="DICOM source: folder, file or fsspec URL")
    parser.add_argument("--reports", help="report source: JSONL/CSV/Open-i XML file or folder")
    parser.add_argument("--out", required=True, help="dataset folder or fsspec URL")
    parser.add_argument("--config", help="experiment YAML (see configs/)")
    parser.add_argument(
        "--finetune", action="append", metavar="FINDING", help="fine-tune for this finding (repeatable)"
    )
    parser.add_argument("--no-finetune", action="store_true", help="stop after promotion")
    parser.add_argument("--shots", type=int, help="few-shot fine-tunes: this many positive examples")
    parser.add_argument("--metric", help="promotion metric (default zeroshot_auroc_macro)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="preprocessing profile for images/")
    return parser


def run(args: argparse.Namespace) -> int:
    from radpipe.settings import get_settings

    labels = [] if args.no_finetune else args.finetune
    check_arguments(
        list(DEFAULT_FINETUNES if labels is None else labels), args.shots, args.metric, args.profile, args.config
    )
    result = pipeline_flow(
        args.dicom, args.reports, args.out, args.config, labels, args.shots, args.metric, args.profile
    )
    print(report(result, get_settings().tracking_uri))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except RadpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
