"""Commands on models and the chain: train, evaluate, promote, embed, finetune, pipeline, dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from radpipe.cli.console import LazyProgress, console, count, out, say
from radpipe.errors import ConfigError
from radpipe.settings import get_settings


def cmd_train(args: argparse.Namespace) -> int:
    from radpipe.commands import train_model

    summary = train_model(args.dataset, args.config, on_status=lambda message: console.print(message, highlight=False))
    metrics = summary.metrics
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("train_loss", "val_loss", "val_top1") if k in metrics)
    out.print(f"trained {summary.steps} steps on dataset version {summary.dataset_version}: {shown}")
    if summary.resumed_from_step:
        out.print(f"resumed from the checkpoint at step {summary.resumed_from_step} after a worker failure")
    out.print(f"model: {summary.model_uri} (MLflow run {summary.run_id})")
    from radpipe.tracking import display_uri

    out.print(f"look: mlflow ui --backend-store-uri {display_uri(get_settings().tracking_uri)}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from radpipe.commands import evaluate_model

    summary = evaluate_model(
        args.model_uri, args.dataset, seed=args.seed, resamples=args.resamples, on_status=say, actors=args.actors
    )
    print_evaluation(summary.metrics)
    out.print(f"{summary.model_uri} on dataset {summary.dataset_version}: MLflow run {summary.run_id}")
    return 0


def print_evaluation(metrics: dict[str, float]) -> None:
    """Per-finding zero-shot AUROCs with intervals, then the headline numbers."""
    findings = sorted(
        k.removeprefix("zeroshot_auroc_")
        for k in metrics
        if k.startswith("zeroshot_auroc_") and not k.endswith(("_ci_low", "_ci_high", "_macro"))
    )
    for name in [*findings, "macro"]:
        key = f"zeroshot_auroc_{name}"
        out.print(
            f"  zero-shot AUROC {name:<18} {metrics[key]:.3f} "
            f"[{metrics[key + '_ci_low']:.3f}, {metrics[key + '_ci_high']:.3f}]"
        )
    for key in ("retrieval_image_to_text_recall_at_5", "retrieval_text_to_image_recall_at_5", "probe_auroc_macro"):
        if key in metrics:
            out.print(f"  {key:<40} {metrics[key]:.3f}")


def cmd_promote(args: argparse.Namespace) -> int:
    from radpipe.commands import promote_model

    summary = promote_model(
        args.model_uri, args.dataset, metric=args.metric, min_improvement=args.min_improvement, on_status=say
    )
    verdict = "promoted to @champion" if summary.promoted else "not promoted"
    out.print(f"{summary.model_uri}: {verdict} ({summary.metric}: {summary.reason})")
    out.print(f"champion: {summary.champion_now}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from radpipe.commands import embed_images

    with LazyProgress("embed") as progress:
        summary = embed_images(args.model_uri, args.dataset, on_progress=progress.update, actors=args.actors)
    out.print(
        f"embedded {summary.images} images ({summary.dimensions} dims) with {summary.model_uri} into {summary.table}"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import json

    from radpipe.model.generate import generation_settings
    from radpipe.model.report_files import generate_reports

    try:
        cfg = generation_settings(
            {"num_beams": args.beams, "max_length": args.max_length, "temperature": args.temperature, "seed": args.seed}
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    model, written = generate_reports(args.model_uri, args.files, cfg, get_settings())
    if args.json:
        for report in written:
            print(json.dumps({"source": report.source, "model": model, **report.sections.as_dict()}))
        return 0
    for report in written:
        out.print(f"== {report.source}", markup=False, highlight=False)
        out.print(report.sections.report() or "(no text written)", markup=False, highlight=False)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    if args.task == "report":
        return _finetune_report(args)
    if not args.label:
        raise ConfigError("--label FINDING is needed for a finding fine-tune (or --task report)")
    from radpipe.commands import finetune_model

    summary = finetune_model(
        args.model_uri,
        args.dataset,
        args.label,
        shots=args.shots,
        mode=args.mode,
        epochs=args.epochs,
        seed=args.seed,
        on_status=lambda message: console.print(message, highlight=False),
    )
    m = summary.metrics
    shots = "" if summary.shots is None else f", {summary.shots} shots"
    out.print(
        f"{summary.label} ({summary.mode}{shots}): trained on {m['finetune_train_positives']:.0f} positive, "
        f"{m['finetune_train_negatives']:.0f} negative images"
    )
    out.print(
        f"finetune_auroc {m['finetune_auroc']:.3f} [{m['finetune_auroc_low']:.3f}, {m['finetune_auroc_high']:.3f}] "
        f"on {m['finetune_test_positives']:.0f} positive, {m['finetune_test_negatives']:.0f} negative test images"
    )
    out.print(f"model: {summary.model_uri}")
    out.print(f"from: {summary.parent_uri} and dataset {summary.dataset_version}")
    out.print(f"MLflow run {summary.run_id}")
    return 0


def _finetune_report(args: argparse.Namespace) -> int:
    from radpipe.commands import finetune_report_model
    from radpipe.finetune.report import SHOWN

    if args.label or args.mode != "frozen":
        raise ConfigError("--task report adapts the report decoder: --label and --mode do not apply")
    summary = finetune_report_model(
        args.model_uri,
        args.dataset,
        shots=args.shots,
        epochs=args.epochs,
        seed=args.seed,
        on_status=lambda message: console.print(message, highlight=False),
    )
    m = summary.metrics
    out.print(f"report decoder adapted on {summary.studies} train studies of dataset {summary.dataset_version}")
    for key in SHOWN:
        out.print(f"  {key:<22} {m[key + '_before']:.3f} -> {m[key]:.3f} (test split, before -> after)")
    out.print(f"model: {summary.model_uri}")
    out.print(f"from: {summary.parent_uri}; MLflow run {summary.run_id}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    # The one command that runs Prefect: the chain is a flow (flows/pipeline.py), imported only here so the
    # library and every other command stay free of it.
    from radpipe.cli.summaries import chain_report
    from radpipe.commands import DEFAULT_FINETUNES, check_chain_arguments

    labels = [] if args.no_finetune else args.finetune
    # Before Prefect starts: a typo costs a second and prints one line, not a flow run's log.
    check_chain_arguments(
        list(DEFAULT_FINETUNES if labels is None else labels), args.shots, args.metric, args.profile, args.config
    )
    from flows.pipeline import pipeline_flow

    result = pipeline_flow(
        dicom=args.dicom,
        reports=args.reports,
        dataset=args.out,
        config=args.config,
        finetune_labels=labels,
        shots=args.shots,
        metric=args.metric,
        profile=args.profile,
    )
    out.print(chain_report(result, get_settings().tracking_uri), markup=False, highlight=False)  # paths may hold [
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from radpipe.ops.dashboard import render_dashboard, tracking_uri_for

    settings = get_settings()
    home = Path(args.home) if args.home else settings.home
    page = render_dashboard(home, Path(args.out), tracking_uri_for(home, settings.mlflow_tracking_uri))
    out.print(f"ops dashboard: {page}", highlight=False)
    return 0


def add_model_commands(sub: Any) -> None:
    """train, evaluate, promote, embed, finetune: models from a validated dataset."""
    train = sub.add_parser("train", help="image-report pretraining on Ray Train, tracked and registered in MLflow")
    train.add_argument("dataset")
    train.add_argument("--config", help="experiment YAML (see configs/); default: built-in defaults")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="zero-shot, retrieval and linear-probe metrics, logged to MLflow")
    evaluate.add_argument("model_uri", help="e.g. models:/radpipe-foundation@champion or models:/radpipe-foundation/3")
    evaluate.add_argument("dataset")
    evaluate.add_argument("--seed", type=count, default=0, help="bootstrap and probe sampling seed")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    evaluate.add_argument(
        "--actors",
        type=count,
        default=0,
        help="Ray actors embedding the test and probe images at once, on RAY_ADDRESS's cluster or a local Ray "
        "(default 0: in this process)",
    )
    evaluate.set_defaults(func=cmd_evaluate)

    promote = sub.add_parser("promote", help="move @champion to the model if it beats the champion on this data")
    promote.add_argument("model_uri", help="a registered version, e.g. models:/radpipe-foundation/3")
    promote.add_argument("dataset")
    promote.add_argument("--metric", default=None, help="metric compared (default zeroshot_auroc_macro)")
    promote.add_argument("--min-improvement", type=float, default=0.0, help="margin the candidate must beat it by")
    promote.set_defaults(func=cmd_promote)

    embed = sub.add_parser("embed", help="embed every image into DATASET/embeddings/ (for pruning and retrieval)")
    embed.add_argument("model_uri", help="e.g. models:/radpipe-foundation@champion")
    embed.add_argument("dataset")
    embed.add_argument(
        "--actors",
        type=count,
        default=None,
        help="Ray actors embedding at once (default: a pool on RAY_ADDRESS's cluster, one per GPU, else in this "
        "process; 0: in this process)",
    )
    embed.set_defaults(func=cmd_embed)

    generate = sub.add_parser("generate", help="write reports for DICOM files or series folders with a model")
    generate.add_argument("model_uri", help="a model trained with objective coca or captioning")
    generate.add_argument("files", nargs="+", metavar="FILE", help="a radiograph DICOM file, or a CT/MR series folder")
    generate.add_argument("--beams", type=int, default=1, help="beam search width (1: greedy)")
    generate.add_argument(
        "--max-length", type=int, default=0, help="tokens at most, [BOS] and [EOS] included (0: the model's maximum)"
    )
    generate.add_argument("--temperature", type=float, default=0.0, help="sample at this temperature (0: greedy)")
    generate.add_argument("--seed", type=count, default=0, help="seed of sampling")
    generate.add_argument("--json", action="store_true", help="one JSON object per input")
    generate.set_defaults(func=cmd_generate)

    finetune = sub.add_parser(
        "finetune", help="train and register a radpipe-<finding> classifier, or adapt the report writer (--task report)"
    )
    finetune.add_argument("model_uri", help="the foundation model, e.g. models:/radpipe-foundation@champion")
    finetune.add_argument("dataset")
    finetune.add_argument(
        "--task", choices=["finding", "report"], default="finding", help="report: radpipe-report, a new report style"
    )
    finetune.add_argument("--label", help="finding, e.g. pleural_effusion (see the reports/ labels)")
    finetune.add_argument(
        "--shots", type=int, help="finding: N positive images (seeded) and every negative; report: N train studies"
    )
    finetune.add_argument("--mode", choices=["frozen", "partial"], default="frozen", help="partial: last stage learns")
    finetune.add_argument("--epochs", type=int, help="passes over the training data (default 100; report: 30)")
    finetune.add_argument("--seed", type=count, default=0)
    finetune.set_defaults(func=cmd_finetune)


def add_chain_commands(sub: Any) -> None:
    """pipeline, dashboard: the whole chain as one Prefect flow, and its ops view."""
    from radpipe.preprocess.profile import DEFAULT_PROFILE

    pipeline = sub.add_parser("pipeline", help="the whole chain as one Prefect flow (what `make demo` runs)")
    pipeline.add_argument("--dicom", help="DICOM source: folder, file or fsspec URL")
    pipeline.add_argument("--reports", help="report source: JSONL/CSV/Open-i XML file or folder")
    pipeline.add_argument("--out", required=True, help="dataset folder or fsspec URL")
    pipeline.add_argument("--config", help="experiment YAML (see configs/); default: built-in defaults")
    pipeline.add_argument("--finetune", action="append", metavar="FINDING", help="fine-tune a finding (repeatable)")
    pipeline.add_argument("--no-finetune", action="store_true", help="stop after promotion")
    pipeline.add_argument("--shots", type=int, help="few-shot fine-tunes: this many positive examples")
    pipeline.add_argument("--metric", help="promotion metric (default zeroshot_auroc_macro)")
    pipeline.add_argument("--profile", default=DEFAULT_PROFILE, help="preprocessing profile for images/")
    pipeline.set_defaults(func=cmd_pipeline)

    dashboard = sub.add_parser("dashboard", help="render the ops view (runs, ingest, validation, training, registry)")
    dashboard.add_argument("--out", required=True, help="the HTML file to write (self-contained)")
    dashboard.add_argument("--home", help="radpipe home holding ops/ (default RADPIPE_HOME)")
    dashboard.set_defaults(func=cmd_dashboard)
