"""`radpipe dashboard`: one self-contained HTML page over the ops table and the MLflow registry.

Inline CSS, plots as inline PNG: the file opens from disk, is mailed or archived as it is, and loads
nothing from the network.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radpipe.errors import RadpipeError, SourceError
from radpipe.ops import plots
from radpipe.ops.table import read_ops

# The chains (pipeline, nightly-ingest) run ingest and curate-validate as subflows, which record their own
# rows: counting the chain's row too would count every file twice.
INGEST_FLOWS = ("ingest",)
VALIDATION_FLOWS = ("curate-validate",)
TRAIN_FLOWS = ("train", "pipeline")
CURVE_RUNS = 5  # pretraining runs drawn: more would be a tangle
TABLE_RUNS = 25  # rows of the "last runs" table
CHAMPION = "champion"


@dataclass
class RegistryView:
    """What the registry says, or why it could not be read (the page still renders)."""

    versions: dict[str, list[Any]] = field(default_factory=dict)  # model name -> [tracking.VersionInfo]
    curves: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)  # run label -> key -> points
    problem: str | None = None


def render_dashboard(home: Path, out: Path, tracking_uri: str | None = None) -> Path:
    """Write the page for the ops table under `home` (and the MLflow store at `tracking_uri`) to `out`."""
    home, out = Path(home).expanduser(), Path(out).expanduser()
    if not home.is_dir():
        raise SourceError(f"no radpipe home at {home} (give --home or set RADPIPE_HOME)")
    if out.is_dir():
        raise SourceError(f"--out is a folder, give a file name: {out}")
    if not out.parent.is_dir():
        raise SourceError(f"the folder of --out does not exist: {out.parent}")
    rows = read_ops(home).to_pylist()
    registry = read_registry(tracking_uri, rows) if tracking_uri else RegistryView(problem="no MLflow store found")
    page = build_page(rows, registry, home)
    temporary = out.with_name(f".{out.name}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, out)
    except OSError as exc:
        raise SourceError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return out


def read_registry(tracking_uri: str, rows: list[dict[str, Any]]) -> RegistryView:
    """Training curves of the recent pretraining runs and every registered version, from MLflow."""
    from radpipe import tracking

    view = RegistryView()
    try:
        tracking.use(tracking_uri)
        trained = [r for r in rows if r["flow"] in TRAIN_FLOWS and r["mlflow_run_id"] and r["status"] == "completed"]
        seen: set[str] = set()
        for row in reversed(trained):  # newest first; the chain's train subflow and the chain share a run
            run = row["mlflow_run_id"]
            if run in seen or len(seen) >= CURVE_RUNS:
                continue
            seen.add(run)
            label = f"{row['started_at']:%m-%d %H:%M} {run[:8]}"
            view.curves[label] = {k: tracking.metric_history(run, k) for k in ("train_loss", "val_loss")}
        view.versions = {name: tracking.registry_versions(name) for name in tracking.registered_models()}
    except RadpipeError as exc:
        view.problem = str(exc).splitlines()[0]
    return view


def build_page(rows: list[dict[str, Any]], registry: RegistryView, home: Path) -> str:
    """The page's HTML (pure over its inputs)."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        _ingest_section(rows),
        _quarantine_section(rows),
        _validation_section(rows),
        _training_section(registry),
        _registry_section(registry),
        _runs_section(rows),
    ]
    banner = (
        f'<p class="empty">Nothing yet: no flow run is recorded under {_e(str(home / "ops"))}. '
        "Run a flow (for example <code>radpipe pipeline ...</code>) and render the page again.</p>"
        if not rows
        else f"<p>{len(rows)} flow runs recorded, the latest {rows[-1]['started_at']:%Y-%m-%d %H:%M} UTC.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>radpipe ops</title><style>{_CSS}</style></head><body>"
        f'<h1>radpipe ops</h1><p class="meta">Generated {generated} from {_e(str(home))}.</p>{banner}'
        + "".join(sections)
        + "</body></html>\n"
    )


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _img(figure: Any, alt: str) -> str:
    return f'<img class="plot" alt="{_e(alt)}" src="{plots.png_data_uri(figure)}">'


def _note(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _ingest_section(rows: list[dict[str, Any]]) -> str:
    runs = [r for r in rows if r["flow"] in INGEST_FLOWS and r["files_seen"] is not None]
    if not runs:
        return _section("ingest", "Ingest volume", _note("No ingest run recorded yet."))
    figure = plots.ingest_volume(
        [r["started_at"] for r in runs],
        [r["files_ingested"] or 0 for r in runs],
        [r["files_quarantined"] or 0 for r in runs],
    )
    total = sum(r["files_ingested"] or 0 for r in runs)
    body = (
        _img(figure, "files ingested and quarantined per run") + f"<p>{total} files ingested in {len(runs)} runs.</p>"
    )
    return _section("ingest", "Ingest volume", body)


def _quarantine_section(rows: list[dict[str, Any]]) -> str:
    counts: Counter[str] = Counter()
    for row in rows:
        if row["flow"] in INGEST_FLOWS:
            counts.update(json.loads(row["quarantine_reasons"] or "{}"))
    counts = Counter({k: v for k, v in counts.items() if v})
    if not counts:
        return _section("quarantine", "Quarantine reasons", _note("Nothing quarantined yet."))
    return _section("quarantine", "Quarantine reasons", _img(plots.quarantine_reasons(counts), "quarantine reasons"))


def _validation_section(rows: list[dict[str, Any]]) -> str:
    runs = [r for r in rows if r["flow"] in VALIDATION_FLOWS and r["validation"] in ("passed", "failed")]
    if not runs:
        return _section("validation", "Validation pass rate", _note("No validation recorded yet."))
    passed = [r["validation"] == "passed" for r in runs]
    figure = plots.validation_rate([r["started_at"] for r in runs], passed)
    body = _img(figure, "validation pass rate") + f"<p>{sum(passed)} of {len(runs)} validations passed.</p>"
    return _section("validation", "Validation pass rate", body)


def _training_section(registry: RegistryView) -> str:
    title = "Training curves"
    if registry.problem:
        return _section("training", title, _note(f"MLflow could not be read: {registry.problem}"))
    if not any(points for series in registry.curves.values() for points in series.values()):
        return _section("training", title, _note("No pretraining run with logged losses yet."))
    body = _img(plots.training_curves(registry.curves), "train and validation loss per step")
    return _section("training", title, body + f"<p>The last {len(registry.curves)} pretraining runs.</p>")


def _registry_section(registry: RegistryView) -> str:
    title = "Registry versions and champion history"
    if registry.problem:
        return _section("registry", title, _note(f"MLflow could not be read: {registry.problem}"))
    if not any(registry.versions.values()):
        return _section("registry", title, _note("No registered model yet."))
    registered = {
        name: [(_time(v.created_ms), int(v.version)) for v in versions]
        for name, versions in registry.versions.items()
        if versions
    }
    champions = {name: _champion_steps(versions) for name, versions in registry.versions.items()}
    head = "<tr><th>model</th><th>version</th><th>registered</th><th>aliases</th><th>promotion</th>"
    head += "<th>metric</th><th>candidate</th><th>champion then</th><th>decided</th></tr>"
    body_rows = []
    for name, versions in sorted(registry.versions.items()):
        for v in reversed(versions):
            t = v.tags
            p = f"promotion.{CHAMPION}."
            cells = [
                name,
                v.version,
                f"{_time(v.created_ms):%Y-%m-%d %H:%M}",
                ", ".join(f"@{a}" for a in v.aliases),
                t.get(p + "decision", ""),
                t.get(p + "metric", ""),
                t.get(p + "candidate_value", ""),
                _champion_then(t.get(p + "champion_version"), t.get(p + "champion_value")),
                t.get(p + "decided_at", ""),
            ]
            body_rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    table = f"<table>{head}{''.join(body_rows)}</table>"
    return _section("registry", title, _img(plots.registry_history(registered, champions), title) + table)


def _champion_steps(versions: list[Any]) -> list[tuple[datetime, int]]:
    """(time, version) each time @champion moved, from the promotion tags radpipe writes on the candidate."""
    prefix = f"promotion.{CHAMPION}."
    moves = []
    for v in versions:
        if v.tags.get(prefix + "decision") == "promoted" and v.tags.get(prefix + "decided_at"):
            try:
                when = datetime.strptime(v.tags[prefix + "decided_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                continue
            moves.append((when, int(v.version)))
    return sorted(moves)


def _champion_then(version: str | None, value: str | None) -> str:
    if not version:
        return ""
    return "none" if version == "none" else f"v{version} ({value})"


def _runs_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _section("runs", "Last runs", _note("No flow run recorded yet."))
    columns = ("started", "flow", "status", "s", "dataset version", "files", "quarantined", "PHI gate", "validation")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in (*columns, "models", "champion", "Prefect run")) + "</tr>"
    lines = []
    for r in reversed(rows[-TABLE_RUNS:]):
        status = r["status"] + (f" ({r['error']})" if r["error"] else "")
        cells = [
            f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
            r["flow"],
            status,
            f"{r['duration_s']:.1f}",
            r["dataset_version"] or "",
            "" if r["files_ingested"] is None else f"{r['files_ingested']} of {r['files_seen']}",
            "" if r["files_quarantined"] is None else str(r["files_quarantined"]),
            r["phi_gate"] or "",
            r["validation"] or "",
            ", ".join(json.loads(r["model_versions"] or "[]")),
            r["champion"] or "",
            r["run_id"],
        ]
        kind = ' class="failed"' if r["status"] == "failed" else ""
        lines.append(f"<tr{kind}>" + "".join(f"<td>{_e(str(c))}</td>" for c in cells) + "</tr>")
    return _section("runs", "Last runs", f"<table>{head}{''.join(lines)}</table>")


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #212121; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
.meta { color: #757575; font-size: 0.9rem; } .empty { color: #757575; font-style: italic; }
img.plot { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 0.8rem; width: 100%; }
th, td { border: 1px solid #e0e0e0; padding: 0.25rem 0.4rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } tr.failed td { background: #ffebee; }
"""


def tracking_uri_for(home: Path, configured: str | None) -> str | None:
    """The MLflow store to read: the configured server, else the SQLite file under `home` if one exists.

    A missing file is not created: drawing a page must not leave an empty MLflow database behind.
    """
    if configured:
        return configured
    database = Path(home).expanduser().resolve() / "mlflow.db"
    return f"sqlite:///{database}" if database.is_file() else None
