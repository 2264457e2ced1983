"""Report generation, RadBench-style: clinical efficacy (labels of the written report against the reference's),
BLEU-4 and ROUGE-L from maintained libraries, and whether a written reasoning agrees with its impression.

Pure: written and reference sections in, metrics out (radpipe/evaluate/run.py does the writing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from radpipe.evaluate.metrics import bootstrap_rows
from radpipe.model.report_text import Sections
from radpipe.reports.label_rules import LABELS
from radpipe.reports.labeler import label_report

# Written reports shown beside their references in the evaluation run (tables/generated_reports.md).
SHOWN = 8


@dataclass(frozen=True)
class GenerationResult:
    metrics: dict[str, float]
    f1: dict[str, float]  # per finding present in the references or the written reports
    rows: list[tuple[str, str]]  # (reference, written) of the first SHOWN studies


def positives(text: str) -> np.ndarray:
    """One bool per LABELS entry: the labeller finds it present in `text`."""
    labels = label_report(text)
    return np.array([labels.get(name) == 1 for name in LABELS], dtype=bool)


def _f1(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-label F1 over rows ([N, L] bool each); nan where the label has no positive on either side."""
    true_pos = (truth & predicted).sum(axis=0)
    denominator = truth.sum(axis=0) + predicted.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * true_pos / denominator, np.nan)


def f1_macro(truth: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> float:
    """Macro F1 over the label columns `labels`: those the references have positives for, and those the
    written reports claim (an invented finding scores 0, not nothing). A column without a positive on either
    side in these rows (a bootstrap resample) is left out."""
    values = _f1(truth[:, labels], predicted[:, labels])
    return float(np.nanmean(values)) if values.size and not np.all(np.isnan(values)) else float("nan")


def report_body(sections: Sections) -> str:
    """What the labeller reads of a report: findings and impression (as the reference's labels are)."""
    return " ".join(part for part in (sections.findings, sections.impression) if part)


def consistent(sections: Sections) -> bool | None:
    """Whether a report's reasoning agrees with its impression: every finding the impression asserts is
    argued for in the reasoning (as present or suspected), and none the reasoning asserts is negated by the
    impression. None when the report has no reasoning section."""
    if not sections.reasoning:
        return None
    reasoning, impression = label_report(sections.reasoning), label_report(sections.impression)
    for name in LABELS:
        if name == "no_finding":
            continue
        if impression.get(name) == 1 and reasoning.get(name) not in (1, -1):
            return False
        if reasoning.get(name) == 1 and impression.get(name) == 0:
            return False
    return True


def consistency(reports: Sequence[Sections]) -> float:
    judged = [c for c in (consistent(s) for s in reports) if c is not None]
    return float(np.mean(judged)) if judged else float("nan")


def generation_metrics(
    references: Sequence[str],
    written: Sequence[Sections],
    normalised_references: Sequence[str],
    reference_sections: Sequence[Sections],
    groups: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
) -> GenerationResult:
    """Every generation metric on the studies given (one written report per study).

    `references` are the stored report texts (labelled as the reports/ table was); `normalised_references`
    the same texts as the decoder's vocabulary writes them (lower case, its spacing), which BLEU and ROUGE
    compare with; `reference_sections` give the reasoning the references carry.
    """
    import sacrebleu
    from rouge_score import rouge_scorer

    bodies = [report_body(s) for s in written]
    truth = np.stack([positives(text) for text in references])
    predicted = np.stack([positives(text) for text in bodies])
    present = np.flatnonzero(truth.any(axis=0) | predicted.any(axis=0))
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = zip(normalised_references, bodies, strict=True)
    rouge = np.array([scorer.score(ref, out)["rougeL"].fmeasure for ref, out in pairs])

    def bleu(rows: np.ndarray) -> float:
        hypotheses = [bodies[i].lower() for i in rows]
        return float(sacrebleu.corpus_bleu(hypotheses, [[normalised_references[i].lower() for i in rows]]).score / 100)

    n = len(groups)
    estimates = {
        "f1_macro": bootstrap_rows(
            lambda rows: f1_macro(truth[rows], predicted[rows], present), n, groups, resamples, seed
        ),
        "rougeL": bootstrap_rows(lambda rows: float(rouge[rows].mean()), n, groups, resamples, seed),
        "bleu4": bootstrap_rows(bleu, n, groups, min(resamples, 200), seed),  # corpus BLEU: a few ms per resample
    }
    metrics: dict[str, float] = {}
    for name, e in estimates.items():
        key = f"generation_{name}"
        metrics |= {key: e.value, f"{key}_ci_low": e.low, f"{key}_ci_high": e.high}
    judged = {"reasoning_consistency": written, "reasoning_consistency_reference": reference_sections}
    for key, reports in judged.items():
        value = consistency(reports)
        if not np.isnan(value):  # no report wrote a reasoning: nothing to judge
            metrics[key] = value
    metrics["generation_reasoning_written_fraction"] = float(np.mean([bool(s.reasoning) for s in written]))
    per_label = _f1(truth, predicted)
    f1 = {LABELS[i]: float(np.nan_to_num(per_label[i])) for i in present}
    metrics |= {f"generation_f1_{label}": value for label, value in f1.items()}  # what the macro averages
    rows = [(references[i], written[i].report()) for i in range(min(SHOWN, len(written)))]
    return GenerationResult(metrics, f1, rows)


def markdown_rows(result: GenerationResult) -> str:
    """The shown studies' reference and written reports side by side (no identifiers: text only, scrubbed)."""
    lines = ["| # | reference report | written report |", "|---|---|---|"]
    for i, (reference, written) in enumerate(result.rows, start=1):
        cells = [" ".join(text.split()).replace("|", "/") for text in (reference, written)]
        lines.append(f"| {i} | {cells[0]} | {cells[1] or '(nothing written)'} |")
    return "\n".join(lines) + "\n"
