"""The `radpipe` command line (CONTRACT.md, "Command line"). User mistakes exit with one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from radpipe.errors import RadpipeError
from radpipe.settings import get_settings

# soft_wrap: an error stays one line whatever the terminal width (scripts and log scrapers split on lines).
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)  # a result line stays one line in a pipe or a log


class LazyProgress:
    """A progress bar that appears with the first update, so an early error prints alone."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def update(self, done: int, total: int | None) -> None:
        if self.bar is None:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total)
        assert self.task is not None
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def cmd_synth(args: argparse.Namespace) -> int:
    from radpipe.synth import write_archive

    done = [0]

    def on_study() -> None:
        done[0] += 1
        progress.update(done[0], args.studies)

    with LazyProgress("synth") as progress:
        summary = write_archive(
            Path(args.out),
            args.studies,
            seed=args.seed,
            phi=args.phi,
            volumes=args.volumes,
            on_study=on_study,
        )
    out.print(
        f"wrote {summary.instances} instances in {summary.studies} studies of {summary.patients} patients, "
        f"{summary.reports} reports, to {args.out}"
    )
    out.print("transfer syntaxes: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.transfer_syntaxes.items())))
    if summary.volume_series:
        out.print(
            f"of which {summary.volume_studies} CT/MR studies ({summary.volume_series} series; cases in "
            f"{Path(args.out) / 'volumes_manifest.json'})"
        )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from radpipe.context import ingest_sources
    from radpipe.report import print_ingest_summary

    with LazyProgress("ingest") as progress:
        volume_profiles = {"CT": args.ct_profile, "MR": args.mr_profile}
        summary = ingest_sources(
            args.dicom,
            args.reports,
            args.out,
            args.profile,
            progress.update,
            volume_profiles=volume_profiles,
            dicom_manifest=args.manifest,
        )
    print_ingest_summary(summary, out)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from radpipe.context import erase

    patient = args.patient_id or sys.stdin.readline().strip()
    if not patient:
        raise RadpipeError("give --patient-id ID (or the ID on standard input)")
    summary = erase(args.dataset, patient)
    if not summary.found:
        out.print("no rows of that patient in the dataset; recorded, so later ingests hold the patient back")
    else:
        out.print("erased: " + ", ".join(f"{table} {rows}" for table, rows in summary.rows_removed.items()))
    return 0


def cmd_scrub_check(args: argparse.Namespace) -> int:
    from radpipe.deid.audit import measure_scrubbing

    m = measure_scrubbing(Path(args.archive))
    out.print(f"reports scrubbed: {m.reports}")
    out.print(f"recall on planted identifiers: {m.recall:.4f} ({m.planted - m.leaked}/{m.planted} removed)")
    out.print(f"clinical sentences intact: {m.clinical_precision:.4f} ({m.clinical_intact}/{m.clinical_sentences})")
    out.print(f"reports whose labels are unchanged: {m.labels_unchanged}/{m.reports}")
    return 0 if m.leaked == 0 else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from radpipe.context import validate

    console.print("validating (Great Expectations, one row group at a time) ...")
    report = validate(args.dataset)
    out.print(
        f"dataset version {report.dataset_version}: {report.batches} batches, "
        f"{'all suites passed' if report.passed else f'{len(report.failures)} failed expectation(s)'}"
    )
    for failure in report.failures[:30]:
        count = f", {failure.unexpected} rows" if failure.unexpected is not None else ""
        out.print(
            f"  FAILED {failure.suite}: {failure.expectation}({failure.column}) in {failure.batch}{count}"
            + (f" - {failure.why}" if failure.why else "")
        )
    out.print(f"Data Docs: {report.data_docs}")
    return 0 if report.passed else 1


def cmd_curate(args: argparse.Namespace) -> int:
    from radpipe.context import curate_dataset

    semantic = None
    if args.semantic_keep is not None or args.semantic_threshold is not None:
        from radpipe.curate.semantic import SemanticRule  # scikit-learn loads only when asked for

        semantic = SemanticRule(threshold=args.semantic_threshold, keep_fraction=args.semantic_keep)
    summary = curate_dataset(args.dataset, near_threshold=args.near_threshold, semantic=semantic)
    out.print("patients per split: " + ", ".join(f"{k} {v}" for k, v in summary.patients_per_split.items()))
    out.print("studies per split: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.studies_per_split.items())))
    out.print(f"patients in more than one split: {summary.patients_in_several_splits}")
    out.print(
        f"duplicates: {summary.exact_duplicates} exact, {summary.near_duplicates} near; "
        f"{summary.pruned} images flagged prune"
    )
    if semantic is not None:
        out.print(f"semantic duplicates: {summary.semantic_duplicates} training images ({summary.semantic_model})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from radpipe.context import train_model

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


def _say(message: str) -> None:
    console.print(message, highlight=False)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from radpipe.context import evaluate_model

    summary = evaluate_model(args.model_uri, args.dataset, seed=args.seed, resamples=args.resamples, on_status=_say)
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
    from radpipe.context import promote_model

    summary = promote_model(
        args.model_uri, args.dataset, metric=args.metric, min_improvement=args.min_improvement, on_status=_say
    )
    verdict = "promoted to @champion" if summary.promoted else "not promoted"
    out.print(f"{summary.model_uri}: {verdict} ({summary.metric}: {summary.reason})")
    out.print(f"champion: {summary.champion_now}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from radpipe.context import embed_images

    with LazyProgress("embed") as progress:
        summary = embed_images(args.model_uri, args.dataset, on_progress=progress.update)
    out.print(
        f"embedded {summary.images} images ({summary.dimensions} dims) with {summary.model_uri} into {summary.table}"
    )
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from radpipe.context import finetune_model

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


def cmd_pipeline(args: argparse.Namespace) -> int:
    # The one command that runs Prefect: the chain is a flow (flows/pipeline.py), imported only here so the
    # library and every other command stay free of it.
    from flows.pipeline import run

    return run(args)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from radpipe.ops.dashboard import render_dashboard, tracking_uri_for

    settings = get_settings()
    home = Path(args.home) if args.home else settings.home
    page = render_dashboard(home, Path(args.out), tracking_uri_for(home, settings.mlflow_tracking_uri))
    out.print(f"ops dashboard: {page}", highlight=False)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from radpipe.report import print_dataset_summary

    if not Path(args.dataset).exists() and "://" not in args.dataset:
        raise RadpipeError(f"dataset not found: {args.dataset}")
    print_dataset_summary(args.dataset, out)
    return 0


def cmd_pseudonym(args: argparse.Namespace) -> int:
    from radpipe.context import deidentifier

    deid = deidentifier()
    values = args.values or [line.strip() for line in sys.stdin if line.strip()]
    for value in values:
        print(deid.pseudonymizer.pseudonym(args.kind, value))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.suite in ("all", "ingest"):
        from radpipe.bench import run_bench

        run_bench(Path(args.out), studies=args.studies, console=out, repeat=args.repeat)
    if args.suite in ("all", "train"):
        from radpipe.bench_train import run_train_bench

        run_train_bench(Path(args.out), console=out, repeat=args.train_repeat)
    if args.suite in ("all", "volume-memory"):
        from radpipe.bench_volume import run_volume_memory_bench

        run_volume_memory_bench(Path(args.out), console=out)
    if args.suite in ("all", "scale"):
        from radpipe.bench_scale import SIZES, run_scale_bench

        run_scale_bench(Path(args.out), console=out, sizes=tuple(args.scale_sizes or SIZES))
    if args.suite in ("all", "deid"):
        from radpipe.bench_deid import run_deid_bench

        run_deid_bench(Path(args.out), console=out)
    if args.suite in ("all", "prune"):
        from radpipe.bench_prune import run_prune_bench

        run_prune_bench(Path(args.out), console=out, studies=args.prune_studies)
    return 0


def _count(text: str) -> int:
    """A non-negative integer argument (seeds, counts): argparse prints the one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from radpipe.preprocess.profile import DEFAULT_PROFILE

    parser = argparse.ArgumentParser(prog="radpipe", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="generate a synthetic DICOM + report archive")
    synth.add_argument("out", help="output folder (OUT/dicom, OUT/reports)")
    synth.add_argument("--studies", type=int, default=100)
    synth.add_argument("--volumes", type=int, default=0, help="chest CT/MR phantom studies; 4+ adds real-layout cases")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--phi", action="store_true", help="plant realistic fake identifiers")
    synth.set_defaults(func=cmd_synth)

    ingest = sub.add_parser("ingest", help="ingest DICOM and reports into a Parquet dataset")
    ingest.add_argument("--dicom", help="DICOM source: folder, file or fsspec URL")
    ingest.add_argument("--reports", help="report source: JSONL/CSV/Open-i XML file or folder")
    ingest.add_argument("--out", required=True, help="dataset folder or fsspec URL")
    ingest.add_argument("--profile", default=DEFAULT_PROFILE, help="preprocessing profile for images/")
    ingest.add_argument("--ct-profile", default="ct-small", help="volume profile for CT series (ct-small, ct-merlin)")
    ingest.add_argument("--mr-profile", default="mr-small", help="volume profile for MR series")
    ingest.add_argument(
        "--manifest",
        metavar="FILE|URL",
        help="the DICOM objects to consider (a newline list of paths or URLs under --dicom, or an S3 Inventory "
        "CSV, .gz allowed) instead of listing the --dicom source",
    )
    ingest.set_defaults(func=cmd_ingest)

    validate = sub.add_parser("validate", help="run the expectation suites; exit 0 only if all pass")
    validate.add_argument("dataset")
    validate.set_defaults(func=cmd_validate)

    curate = sub.add_parser("curate", help="patient-level splits, duplicate and prune flags")
    curate.add_argument("dataset")
    curate.add_argument("--near-threshold", type=int, default=8, help="pHash Hamming distance (of 256 bits)")
    pruning = curate.add_mutually_exclusive_group()  # SemDeDup on embeddings/ (`radpipe embed`), train split only
    pruning.add_argument(
        "--semantic-keep", type=float, metavar="FRACTION", help="prune semantic duplicates, keeping this share"
    )
    pruning.add_argument(
        "--semantic-threshold", type=float, metavar="COSINE", help="prune images this similar to a kept one"
    )
    curate.set_defaults(func=cmd_curate)

    train = sub.add_parser("train", help="image-report pretraining on Ray Train, tracked and registered in MLflow")
    train.add_argument("dataset")
    train.add_argument("--config", help="experiment YAML (see configs/); default: built-in defaults")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="zero-shot, retrieval and linear-probe metrics, logged to MLflow")
    evaluate.add_argument("model_uri", help="e.g. models:/radpipe-foundation@champion or models:/radpipe-foundation/3")
    evaluate.add_argument("dataset")
    evaluate.add_argument("--seed", type=_count, default=0, help="bootstrap and probe sampling seed")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
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
    embed.set_defaults(func=cmd_embed)

    finetune = sub.add_parser("finetune", help="train, measure and register a radpipe-<finding> classifier")
    finetune.add_argument("model_uri", help="the foundation model, e.g. models:/radpipe-foundation@champion")
    finetune.add_argument("dataset")
    finetune.add_argument("--label", required=True, help="finding, e.g. pleural_effusion (see the reports/ labels)")
    finetune.add_argument("--shots", type=int, help="train on N positive images (seeded) and every negative")
    finetune.add_argument("--mode", choices=["frozen", "partial"], default="frozen", help="partial: last stage learns")
    finetune.add_argument("--epochs", type=int, help="passes over the training images (default 100)")
    finetune.add_argument("--seed", type=_count, default=0)
    finetune.set_defaults(func=cmd_finetune)

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

    summary = sub.add_parser("summary", help="print row counts and label/quarantine tallies of a dataset")
    summary.add_argument("dataset")
    summary.set_defaults(func=cmd_summary)

    pseudonym = sub.add_parser("pseudonym", help="print pseudonyms of source identifiers (key holders only)")
    pseudonym.add_argument("--kind", required=True, choices=["patient_id", "accession_number", "uid"])
    pseudonym.add_argument("values", nargs="*", help="identifiers; read from stdin, one per line, if none")
    pseudonym.set_defaults(func=cmd_pseudonym)

    erase = sub.add_parser("erase", help="remove one patient's rows from every table (key holder)")
    erase.add_argument("dataset")
    erase.add_argument("--patient-id", help="the source patient ID (or on standard input, kept out of shell history)")
    erase.set_defaults(func=cmd_erase)

    scrub = sub.add_parser("scrub-check", help="measure report scrubbing on a `radpipe synth --phi` archive")
    scrub.add_argument("archive")
    scrub.set_defaults(func=cmd_scrub_check)

    bench = sub.add_parser(
        "bench",
        help="benchmarks: ingest vs a naive loop and the decode floor; Ray Train vs plain PyTorch; "
        "full data vs a SemDeDup-pruned third vs a random third",
    )
    bench.add_argument("--out", default="bench-out")
    bench.add_argument(
        "--suite", choices=["all", "ingest", "train", "prune", "volume-memory", "deid", "scale"], default="all"
    )
    bench.add_argument(
        "--scale-sizes", type=int, nargs="+", metavar="FILES", help="dataset sizes of the scale suite (10000 100000)"
    )
    bench.add_argument("--prune-studies", type=int, default=1000, help="corpus size of the data-efficiency suite")
    bench.add_argument("--train-repeat", type=int, default=2, help="rounds of the training benchmark")
    bench.add_argument("--studies", type=int, default=2400, help="corpus size (cached under --out)")
    bench.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RadpipeError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to finish (committed work is kept)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
