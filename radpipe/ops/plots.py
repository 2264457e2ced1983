"""The dashboard's plots: matplotlib figures (Agg, no display) as inline base64 PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import datetime

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PASS_COLOUR, FAIL_COLOUR, INGEST_COLOUR = "#2e7d32", "#c62828", "#1565c0"


def png_data_uri(figure: Figure) -> str:
    """The figure as a data: URI (the page needs no file and no network)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(width: float = 8.0, height: float = 3.2) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _labels(times: Sequence[datetime]) -> list[str]:
    return [t.strftime("%m-%d %H:%M") for t in times]


def ingest_volume(times: Sequence[datetime], ingested: Sequence[int], quarantined: Sequence[int]) -> Figure:
    """Files ingested and quarantined per ingest run, stacked, oldest run left."""
    figure, ax = _figure()
    x = range(len(times))
    ax.bar(x, ingested, color=INGEST_COLOUR, label="ingested")
    ax.bar(x, quarantined, bottom=ingested, color=FAIL_COLOUR, label="quarantined")
    ax.set_xticks(list(x), _labels(times), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("files")
    ax.legend(loc="upper left")
    return figure


def quarantine_reasons(counts: Mapping[str, int]) -> Figure:
    """Quarantined files (and report lines) by reason, over every run, most frequent on top."""
    ordered = sorted(counts.items(), key=lambda kv: kv[1])
    figure, ax = _figure(height=max(2.0, 0.35 * len(ordered) + 1.0))
    ax.barh([k for k, _ in ordered], [v for _, v in ordered], color=FAIL_COLOUR)
    ax.set_xlabel("files over all runs")
    return figure


def validation_rate(times: Sequence[datetime], passed: Sequence[bool], window: int = 10) -> Figure:
    """Each validation (dot at 1 passed, 0 failed) and the pass rate over the last `window` runs (line)."""
    figure, ax = _figure()
    x = list(range(len(times)))
    rate = [sum(passed[max(0, i - window + 1) : i + 1]) / len(passed[max(0, i - window + 1) : i + 1]) for i in x]
    ax.plot(x, rate, color="#424242", label=f"pass rate (last {window})")
    colours = [PASS_COLOUR if p else FAIL_COLOUR for p in passed]
    ax.scatter(x, [1.0 if p else 0.0 for p in passed], c=colours, zorder=3, label="runs")
    ax.set_ylim(-0.1, 1.1)
    ax.set_xticks(x, _labels(times), rotation=45, ha="right", fontsize=8)
    ax.legend(loc="lower left")
    return figure


def training_curves(curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]]) -> Figure:
    """train_loss (solid) and val_loss (dashed) per step, one colour per pretraining run."""
    figure, ax = _figure(height=3.6)
    for i, (run, series) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        for key, style in (("train_loss", "-"), ("val_loss", "--")):
            points = series.get(key) or []
            if points:
                ax.plot(
                    [s for s, _ in points],
                    [v for _, v in points],
                    style,
                    color=colour,
                    marker="o" if len(points) < 3 else None,
                    label=f"{run} {key}",
                )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, loc="upper right")
    return figure


def registry_history(
    versions: Mapping[str, Sequence[tuple[datetime, int]]], champions: Mapping[str, Sequence[tuple[datetime, int]]]
) -> Figure:
    """Versions registered over time (dots) and the version holding @champion (step line), per model."""
    figure, ax = _figure(height=3.6)
    for i, (name, points) in enumerate(sorted(versions.items())):
        colour = f"C{i % 10}"
        ax.scatter(date2num([t for t, _ in points]), [v for _, v in points], color=colour, label=f"{name} versions")
        held = champions.get(name) or []
        if held:
            ax.step(
                date2num([t for t, _ in held]),
                [v for _, v in held],
                where="post",
                color=colour,
                label=f"{name} @champion",
            )
    ax.xaxis_date()
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("version")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7, loc="upper left")
    return figure
