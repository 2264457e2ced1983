"""Commands on archives and datasets: synth, ingest, validate, curate, summary, pseudonym, erase, optimize,
scrub-check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from radpipe.cli.console import LazyProgress, console, out
from radpipe.errors import RadpipeError


def cmd_synth(args: argparse.Namespace) -> int:
    from radpipe.synth.archive import default_workers, write_archive

    done = [0]
    total = args.studies + max(args.volumes, 0)
    workers = args.workers if args.workers is not None else default_workers(total)

    def on_study() -> None:
        done[0] += 1
        progress.update(done[0], total)

    with LazyProgress("synth") as progress:
        summary = write_archive(
            Path(args.out),
            args.studies,
            seed=args.seed,
            phi=args.phi,
            volumes=args.volumes,
            on_study=on_study,
            workers=workers,
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
    from radpipe.cli.summaries import print_ingest_summary
    from radpipe.commands import ingest_sources

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


def cmd_validate(args: argparse.Namespace) -> int:
    from radpipe.commands import validate

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
    from radpipe.commands import curate_dataset

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


def cmd_summary(args: argparse.Namespace) -> int:
    from radpipe.cli.summaries import print_dataset_summary
    from radpipe.dataset.store import split_version

    if not Path(split_version(args.dataset)[0]).exists() and "://" not in args.dataset:
        raise RadpipeError(f"dataset not found: {args.dataset}")
    print_dataset_summary(args.dataset, out)
    return 0


def cmd_pseudonym(args: argparse.Namespace) -> int:
    from radpipe.commands import deidentifier

    deid = deidentifier()
    values = args.values or [line.strip() for line in sys.stdin if line.strip()]
    for value in values:
        print(deid.pseudonymizer.pseudonym(args.kind, value))
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from radpipe.commands import erase

    patient = args.patient_id or sys.stdin.readline().strip()
    if not patient:
        raise RadpipeError("give --patient-id ID (or the ID on standard input)")
    summary = erase(args.dataset, patient)
    if not summary.found:
        out.print("no rows of that patient in the dataset; recorded, so later ingests hold the patient back")
    else:
        out.print("erased: " + ", ".join(f"{table} {rows}" for table, rows in summary.rows_removed.items()))
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    from radpipe.commands import optimize

    summary = optimize(args.dataset, args.retention_days)
    for table, before in summary.files_before.items():
        after, vacuumed = summary.files_after[table], summary.vacuumed.get(table, 0)
        out.print(f"{table}/: {before} -> {after} files, {vacuumed} old files vacuumed")
    out.print(
        f"compacted {summary.compacted} files away; versions older than {summary.retention_days:g} days may no "
        "longer be readable"
    )
    return 0


def cmd_scrub_check(args: argparse.Namespace) -> int:
    from radpipe.deid.audit import measure_scrubbing

    m = measure_scrubbing(Path(args.archive))
    out.print(f"reports scrubbed: {m.reports}")
    out.print(f"recall on planted identifiers: {m.recall:.4f} ({m.planted - m.leaked}/{m.planted} removed)")
    out.print(f"clinical sentences intact: {m.clinical_precision:.4f} ({m.clinical_intact}/{m.clinical_sentences})")
    out.print(f"reports whose labels are unchanged: {m.labels_unchanged}/{m.reports}")
    return 0 if m.leaked == 0 else 1


def add_ingest_commands(sub: Any) -> None:
    """synth, ingest, validate, curate: from an archive to a validated dataset."""
    from radpipe.preprocess.profile import DEFAULT_PROFILE

    synth = sub.add_parser("synth", help="generate a synthetic DICOM + report archive")
    synth.add_argument("out", help="output folder (OUT/dicom, OUT/reports)")
    synth.add_argument("--studies", type=int, default=100)
    synth.add_argument("--volumes", type=int, default=0, help="chest CT/MR phantom studies; 4+ adds real-layout cases")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--phi", action="store_true", help="plant realistic fake identifiers")
    synth.add_argument(
        "--workers",
        type=int,
        help="processes drawing and writing studies (default: one per core, up to 8, from 200 studies; same archive)",
    )
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


def add_dataset_tools(sub: Any) -> None:
    """summary, pseudonym, erase, optimize, scrub-check: looking at and looking after a dataset."""
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

    optimize = sub.add_parser("optimize", help="compact small files; vacuum table versions past retention")
    optimize.add_argument("dataset")
    optimize.add_argument(
        "--retention-days",
        type=float,
        default=None,
        help="keep versions this long for DATASET@VERSION reads (default RADPIPE_RETENTION_DAYS, 30)",
    )
    optimize.set_defaults(func=cmd_optimize)

    scrub = sub.add_parser("scrub-check", help="measure report scrubbing on a `radpipe synth --phi` archive")
    scrub.add_argument("archive")
    scrub.set_defaults(func=cmd_scrub_check)
