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
    for label, value in [*_dicom_rows(summary), *_report_rows(summary), *_run_rows(summary)]:
        table.add_row(label, value)
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


Rows = list[tuple[str, str]]


def _dicom_rows(summary: IngestSummary) -> Rows:
    rows = [
        ("DICOM files seen", f"{summary.files_seen:,}"),
        ("  already ingested (skipped)", f"{summary.files_skipped:,}"),
        ("  new this run", f"{summary.files_in:,}"),
        ("  ingested as instances", f"{summary.instances_added:,}"),
    ]
    if summary.instances_without_patient_id:
        rows.append(("    without PatientID (study = patient)", f"{summary.instances_without_patient_id:,}"))
    if summary.images_without_body_part:
        rows.append(("    radiographs without BodyPartExamined", f"{summary.images_without_body_part:,}"))
    rows.append(("  quarantined", f"{summary.quarantined_files:,}"))
    rows += [(f"    {reason}", f"{count:,}") for reason, count in sorted(summary.quarantined.items())]
    return rows


def _report_rows(summary: IngestSummary) -> Rows:
    rows = [
        ("Report files seen", f"{summary.report_files:,}"),
        ("  new or changed, read this run", f"{summary.report_files_in:,}"),
        ("  reports added", f"{summary.reports_added:,}"),
    ]
    if summary.reports_unchanged:
        rows.append(("  unchanged (file re-read)", f"{summary.reports_unchanged:,}"))
    rows += [(f"    quarantined {reason}", f"{n:,}") for reason, n in sorted(summary.reports_quarantined.items()) if n]
    rows += [
        (f"  unlabelled: language {language} (labels left null)", f"{count:,}")
        for language, count in sorted(summary.reports_unlabelled_language.items())
    ]
    rows.append(("Reports linked to studies (whole dataset)", f"{summary.reports_linked:,}"))
    rows.append(("Reports waiting for images (orphaned)", f"{summary.reports_orphaned:,}"))
    return rows


def _run_rows(summary: IngestSummary) -> Rows:
    rows = []
    if summary.volumes_assembled or summary.volumes_with_issues:
        rows.append(("CT/MR series assembled into volumes", f"{summary.volumes_assembled:,}"))
        rows.append(("  held back for their geometry", f"{sum(summary.volumes_with_issues.values()):,}"))
        rows += [(f"    {issue}", f"{count:,}") for issue, count in sorted(summary.volumes_with_issues.items())]
    rows.append(("Studies in dataset", f"{summary.studies:,}"))
    rows.append(("Time", f"{summary.seconds:,.1f} s"))
    files = summary.files_in + summary.report_files_in  # DICOM and report files read this run
    per_second = 1 / summary.seconds if summary.seconds else 0.0
    throughput = f"{files * per_second:,.1f} files/s, {summary.input_bytes / 1e6 * per_second:,.1f} MB/s"
    if summary.reports_added and summary.seconds:
        throughput += f", {summary.reports_added * per_second:,.0f} reports/s"
    rows.append(("Throughput", throughput))
    if summary.recovered_batches or summary.dropped_batches:
        finished = f"{summary.recovered_batches} finished, {summary.dropped_batches} rolled back"
        rows.append(("Recovered from an interrupted run", finished))
    if summary.identifier_batches_repaired or summary.identifier_batches_unrepaired:
        rebuilt = f"{summary.identifier_batches_repaired} batches, {summary.identifier_batches_unrepaired} not found"
        rows.append(("PHI-gate identifiers rebuilt from the sources", rebuilt))
    return rows


def print_dataset_summary(uri: str, console: Console) -> None:
    store = DatasetStore(uri)
    table = Table(title=f"dataset {uri}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("files", justify="right")
    table.add_column("Delta version", justify="right")
    for name in ("instances", "images", "volumes", "reports", "studies", "quarantine", "curation"):
        version = store.table_version(name)
        files = str(len(store.table_files(name)))
        table.add_row(name + "/", f"{store.count_rows(name):,}", files, "-" if version < 0 else str(version))
    console.print(table)
    if store.table_files("reports"):
        labels = store.read_table("reports", ["labels"]).column("labels").to_pylist()
        positives: dict[str, int] = {}
        for row in labels:
            for label, value in (row or {}).items():
                if value == 1:
                    positives[label] = positives.get(label, 0) + 1
        console.print("positive labels: " + ", ".join(f"{k} {v}" for k, v in sorted(positives.items())))
    for line in _check_lines(store):
        console.print(line)
    if store.table_files("quarantine"):
        reasons = store.read_table("quarantine", ["reason"]).column("reason").value_counts().to_pylist()
        console.print("quarantine reasons: " + ", ".join(f"{r['values']} {r['counts']}" for r in reasons))


def _check_lines(store: DatasetStore) -> list[str]:
    """The PHI gate's and validation's last verdicts, when they ran."""
    from radpipe.quality.status import last_validation

    lines = []
    gate = store.path("_gate.json")
    if store.fs.exists(gate):
        with store.fs.open(gate, "r") as fh:
            result = json.load(fh)
        hits = ", ".join(f"{hit['table']}.{hit['column']}" for hit in result["hits"])
        verdict = "passed" if result["passed"] else f"FAILED ({hits})"
        lines.append(f"PHI gate: {verdict}, checked {result['checked_at']}")
    validation = last_validation(store.uri)
    if validation is not None:
        failures = validation.get("failures")
        failed = len(failures) if isinstance(failures, list) else 0
        verdict = "passed" if validation["passed"] else f"FAILED ({failed} expectations)"
        lines.append(f"validation: {verdict}, dataset version {validation['dataset_version']}")
        lines.append(f"Data Docs: {validation['data_docs']}")
    return lines


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in (text.strip() or "(nothing written)").splitlines())


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
    for reference, written in result["evaluation"].get("written_reports", []):
        lines += [
            "",
            "reference report (test study):",
            _indented(reference),
            "written by the model:",
            _indented(written),
        ]
    name = str(result["champion"]).removeprefix("models:/").split("/")[0].split("@")[0]
    lines += [
        "",
        f"Data Docs: {result['validation']['data_docs']}",
        f"MLflow: mlflow ui --backend-store-uri {display_uri(tracking_uri)}   # then open http://127.0.0.1:5000",
        f"Champion: mlflow.pyfunc.load_model('models:/{name}@champion')",
    ]
    return "\n".join(lines)
