"""`radpipe bench --suite deid`: the report scrubber on annotated lines, beside a baseline in the same run.

The lines (tests/deid/data) were written before the rules were changed, by a helper who did not see them;
the tuning half was used to write rules, the held-out half only to measure. The baseline is the same
scrubber without the header index (generic rules only), so the figure shows what header knowledge adds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import radpipe.deid.span_audit as audit
from radpipe.bench import CHECKOUT
from radpipe.errors import SourceError

DATA = CHECKOUT / "tests" / "deid" / "data"


def run_deid_bench(out: Path, console: Console) -> dict[str, Any]:
    if not DATA.exists():
        raise SourceError(f"the annotated scrubber sets are in a source checkout ({DATA}); run from the repository")
    results: dict[str, Any] = {}
    table = Table(title="report scrubber: annotated lines (recall on identifier spans, clinical lines intact)")
    for column in ("set", "scrubber", "spans", "recall", "clinical lines", "intact"):
        table.add_column(column, justify="left" if column in ("set", "scrubber") else "right")
    for half in SETS:
        for name, with_index in (("generic rules (baseline)", False), ("rules + header index", True)):
            measured = audit.measure_spans(DATA / f"scrub_{half}.jsonl", with_index)
            results[f"{half}/{'index' if with_index else 'baseline'}"] = {
                "recall": measured.recall,
                "spans": measured.spans,
                "leaked": measured.leaked,
                "clinical_retention": measured.retention,
                "clinical_lines": measured.clinical_lines,
                "leaked_by_category": dict(measured.leaked_by_category),
            }
            table.add_row(
                half,
                name,
                str(measured.spans),
                f"{measured.recall:.3f}",
                str(measured.clinical_lines),
                f"{measured.retention:.3f}",
            )
    notes = _philter_notes(out / "philter-lite")
    if notes:
        measured = audit.measure_rows(notes, with_header=False)
        results["i2b2 (philter-lite 0.6.0)/rules"] = {
            "recall": measured.recall,
            "spans": measured.spans,
            "clinical_retention": measured.retention,
            "leaked_by_category": dict(measured.leaked_by_category),
        }
        table.add_row(
            "i2b2 notes",
            "generic rules",
            str(measured.spans),
            f"{measured.recall:.3f}",
            str(measured.clinical_lines),
            f"{measured.retention:.3f}",
        )
    console.print(table)
    precision = _real_text_precision(out)
    if precision is not None:
        console.print(precision)
    results |= {f"real text/{name}": figures for name, figures in _precision_figures.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "deid.json").write_text(json.dumps(results, indent=2))
    return results


# The annotated sets in the order they were written; each was unseen until measured (tests/deid/data/README.md).
SETS = ("tuning", "heldout", "heldout2", "heldout3")
# Real report text fetched by `make corpora` (tests/corpora.py): Open-i (identifiers already XXXX) and PadChest.
CORPORA = CHECKOUT / ".cache" / "corpora"
_precision_figures: dict[str, dict[str, Any]] = {}


def _real_text_precision(out: Path) -> Table | None:
    """Regions the scrubber replaces in real report text that are not identifiers (clinical words lost)."""
    import itertools

    from radpipe.reports.padchest import physician_reports

    sources = []
    openi, padchest = CORPORA / "openi" / "NLMCXR_reports.tgz", CORPORA / "padchest" / "padchest.csv.gz"
    if openi.exists():
        sources.append(("Open-i (English, identifiers XXXX)", audit.openi_sections(openi), audit.openi_explained))
    if padchest.exists():
        texts = [r.text for r in itertools.islice(physician_reports(padchest), 20_000)]
        sources.append(("PadChest (Spanish, dates only)", texts, audit.padchest_explained))
    if not sources:
        return None
    table = Table(title="report scrubber: real report text (regions replaced that are not identifiers)")
    for column in ("corpus", "texts", "changed", "not identifiers", "fraction"):
        table.add_column(column, justify="left" if column == "corpus" else "right")
    for name, texts, explained in sources:
        measured = audit.measure_precision(texts, explained)
        _precision_figures[name] = {
            "texts": measured.texts,
            "changed": measured.changed,
            "not_identifiers": len(measured.unexplained),
        }
        table.add_row(
            name,
            str(measured.texts),
            str(measured.changed),
            str(len(measured.unexplained)),
            f"{measured.unexplained_fraction:.4f}",
        )
    return table


# Real-world clinical notes with annotated identifiers (i2b2 2014 format, surrogate PHI), BSD-3, on PyPI.
PHILTER = "philter-lite==0.6.0"


def _philter_notes(cache: Path) -> list[dict[str, Any]]:
    """philter-lite's annotated i2b2 notes as audit rows (downloaded once; none when the registry is away)."""
    import subprocess
    import sys
    import zipfile

    cache.mkdir(parents=True, exist_ok=True)
    wheels = list(cache.glob("*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), PHILTER]
        if subprocess.run(command, capture_output=True).returncode != 0:
            return []
        wheels = list(cache.glob("*.whl"))
    rows: list[dict[str, Any]] = []
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in sorted(n for n in wheel.namelist() if "/i2b2_xml/" in n and n.endswith(".xml")):
            rows += audit.i2b2_rows(wheel.read(name).decode("utf-8"), name.rsplit("/", 1)[-1])
    return rows
