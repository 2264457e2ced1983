"""Human-readable summaries of an ingest run, a dataset and the whole chain (one screen, no PHI)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from radpipe.dataset.store import DatasetStore
from radpipe.ingest.summary import IngestSummary


def print_ingest_summary(summary: IngestSummary, console: Console) -> None:
    table = Table(title="radpipe ingest", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    files = summary.files_in + summary.report_files_in  # DICOM and report files read this run
    rate = files / summary.seconds if summary.seconds else 0.0
    mb = summary.input_bytes / 1e6
    table.add_row("DICOM files seen", f"{summary.files_seen:,}")
    table.add_row("  already ingested (skipped)", f"{summary.files_skipped:,}")
    table.add_row("  new this run", f"{summary.files_in:,}")
    table.add_row("  ingested as instances", f"{summary.instances_added:,}")
    if summary.instances_without_patient_id:
        table.add_row("    without PatientID (study = patient)", f"{summary.instances_without_patient_id:,}")
    if summary.images_without_body_part:
        table.add_row("    radiographs without BodyPartExamined", f"{summary.images_without_body_part:,}")
    table.add_row("  quarantined", f"{summary.quarantined_files:,}")
    for reason, count in sorted(summary.quarantined.items()):
        table.add_row(f"    {reason}", f"{count:,}")
    table.add_row("Report files seen", f"{summary.report_files:,}")
    table.add_row("  new or changed, read this run", f"{summary.report_files_in:,}")
    table.add_row("  reports added", f"{summary.reports_added:,}")
    if summary.reports_unchanged:
        table.add_row("  unchanged (file re-read)", f"{summary.reports_unchanged:,}")
    for reason, count in sorted(summary.reports_quarantined.items()):
        if count:
            table.add_row(f"    quarantined {reason}", f"{count:,}")
    for language, count in sorted(summary.reports_unlabelled_language.items()):
        table.add_row(f"  unlabelled: language {language} (labels left null)", f"{count:,}")
    table.add_row("Reports linked to studies (whole dataset)", f"{summary.reports_linked:,}")
    table.add_row("Reports waiting for images (orphaned)", f"{summary.reports_orphaned:,}")
    if summary.volumes_assembled or summary.volumes_with_issues:
        table.add_row("CT/MR series assembled into volumes", f"{summary.volumes_assembled:,}")
        table.add_row("  held back for their geometry", f"{sum(summary.volumes_with_issues.values()):,}")
        for issue, count in sorted(summary.volumes_with_issues.items()):
            table.add_row(f"    {issue}", f"{count:,}")
    table.add_row("Studies in dataset", f"{summary.studies:,}")
    table.add_row("Time", f"{summary.seconds:,.1f} s")
    throughput = f"{rate:,.1f} files/s, {mb / summary.seconds if summary.seconds else 0:,.1f} MB/s"
    if summary.reports_added and summary.seconds:
        throughput += f", {summary.reports_added / summary.seconds:,.0f} reports/s"
    table.add_row("Throughput", throughput)
    if summary.recovered_batches or summary.dropped_batches:
        table.add_row(
            "Recovered from an interrupted run",
            f"{summary.recovered_batches} finished, {summary.dropped_batches} rolled back",
        )
    if summary.identifier_batches_repaired or summary.identifier_batches_unrepaired:
        table.add_row(
            "PHI-gate identifiers rebuilt from the sources",
            f"{summary.identifier_batches_repaired} batches, {summary.identifier_batches_unrepaired} not found",
        )
    console.print(table)
    withheld = sum(summary.withheld.values())
    if withheld:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.withheld.items()))
        console.print(f"PHI gate: passed; {withheld} records withheld for identifiers ({reasons}), see quarantine/")
    else:
        console.print("PHI gate: passed (no source identifier in any table)")
    check = "holds" if summary.balanced else "BROKEN"
    console.print(
        f"files in = instances + quarantine: {summary.files_in} = "
        f"{summary.instances_added} + {summary.quarantined_files} ({check})"
    )


def print_dataset_summary(uri: str, console: Console) -> None:
    store = DatasetStore(uri)
    table = Table(title=f"dataset {uri}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("files", justify="right")
    for name in ("instances", "images", "volumes", "reports", "studies", "quarantine"):
        files = store.table_files(name)
        rows = store.read_table(name, [_first_column(name)]).num_rows if files else 0
        table.add_row(name + "/", f"{rows:,}", str(len(files)))
    console.print(table)
    if store.table_files("reports"):
        labels = store.read_table("reports", ["labels"]).column("labels").to_pylist()
        positives: dict[str, int] = {}
        for row in labels:
            for label, value in (row or {}).items():
                if value == 1:
                    positives[label] = positives.get(label, 0) + 1
        console.print("positive labels: " + ", ".join(f"{k} {v}" for k, v in sorted(positives.items())))
    gate = store.path("_gate.json")
    if store.fs.exists(gate):
        with store.fs.open(gate, "r") as fh:
            result = json.load(fh)
        verdict = (
            "passed"
            if result["passed"]
            else "FAILED (" + ", ".join(f"{hit['table']}.{hit['column']}" for hit in result["hits"]) + ")"
        )
        console.print(f"PHI gate: {verdict}, checked {result['checked_at']}")
    quality = store.path("_quality", "summary.json")
    if store.fs.exists(quality):
        with store.fs.open(quality, "r") as fh:
            validation = json.load(fh)
        verdict = "passed" if validation["passed"] else f"FAILED ({len(validation['failures'])} expectations)"
        console.print(f"validation: {verdict}, dataset version {validation['dataset_version']}")
        console.print(f"Data Docs: {validation['data_docs']}")
    if store.table_files("quarantine"):
        reasons = store.read_table("quarantine", ["reason"]).column("reason").value_counts().to_pylist()
        console.print("quarantine reasons: " + ", ".join(f"{r['values']} {r['counts']}" for r in reasons))


def _first_column(table: str) -> str:
    return {
        "instances": "sop_instance_uid",
        "images": "sop_instance_uid",
        "volumes": "series_instance_uid",
        "reports": "report_id",
        "studies": "study_instance_uid",
        "quarantine": "source_key",
    }[table]


def chain_report(result: Mapping[str, Any], tracking_uri: str) -> str:
    """Where to look, after the chain (`radpipe pipeline`): the numbers, the champion, MLflow, Data Docs."""
    from radpipe.evaluate.protocol import HEADLINE
    from radpipe.tracking import display_uri

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
    name = str(result["champion"]).removeprefix("models:/").split("/")[0].split("@")[0]
    lines += [
        f"Data Docs: {result['validation']['data_docs']}",
        f"MLflow: mlflow ui --backend-store-uri {display_uri(tracking_uri)}   # then open http://127.0.0.1:5000",
        f"Champion: mlflow.pyfunc.load_model('models:/{name}@champion')",
    ]
    return "\n".join(lines)
