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
from radpipe.errors import SourceError

DATA = Path(__file__).resolve().parents[1] / "tests" / "deid" / "data"


def run_deid_bench(out: Path, console: Console) -> dict[str, Any]:
    if not DATA.exists():
        raise SourceError(f"the annotated scrubber sets are in a source checkout ({DATA}); run from the repository")
    results: dict[str, Any] = {}
    table = Table(title="report scrubber: annotated lines (recall on identifier spans, clinical lines intact)")
    for column in ("set", "scrubber", "spans", "recall", "clinical lines", "intact"):
        table.add_column(column, justify="left" if column in ("set", "scrubber") else "right")
    for half in ("tuning", "heldout"):
        for name, with_index in (("generic rules (baseline)", False), ("rules + header index", True)):
            measured = _measure(DATA / f"scrub_{half}.jsonl", with_index)
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
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "deid.json").write_text(json.dumps(results, indent=2))
    return results


def _measure(path: Path, with_index: bool) -> audit.SpanMeasure:
    if with_index:
        return audit.measure_spans(path)
    original = audit.header_index
    audit.header_index = lambda record, key=audit.AUDIT_KEY: None
    try:
        return audit.measure_spans(path)
    finally:
        audit.header_index = original
