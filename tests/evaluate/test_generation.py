"""Report-generation metrics (radpipe/evaluate/generation.py) on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from radpipe.evaluate.generation import consistency, consistent, f1_macro, generation_metrics, markdown_rows, positives
from radpipe.model.report_text import Sections
from radpipe.reports.label_rules import LABELS

REFERENCES = [
    "The heart is enlarged. Cardiomegaly.",
    "Small right pleural effusion. Right pleural effusion.",
    "No pneumothorax. No pleural effusion. No acute cardiopulmonary process.",
    "There is a left pneumothorax. Left pneumothorax.",
]


def _sections(text: str) -> Sections:
    body, _, impression = text.rpartition(". ")
    return Sections(findings=body + ".", impression=impression)


def _metrics(written: list[Sections], references: list[Sections] | None = None) -> dict[str, float]:
    refs = references or [_sections(t) for t in REFERENCES]
    normalised = [t.lower() for t in REFERENCES]
    groups = [f"study-{i}" for i in range(len(REFERENCES))]
    return generation_metrics(REFERENCES, written, normalised, refs, groups, resamples=50, seed=0).metrics


def test_the_reference_itself_scores_one() -> None:
    m = _metrics([_sections(t.lower()) for t in REFERENCES])
    assert m["generation_f1_macro"] == pytest.approx(1.0)
    assert m["generation_bleu4"] == pytest.approx(1.0)
    assert m["generation_rougeL"] == pytest.approx(1.0)
    assert m["generation_f1_macro_ci_low"] <= 1.0 <= m["generation_f1_macro_ci_high"] + 1e-9


def test_clinical_efficacy_counts_findings_not_words() -> None:
    # Study 4's pneumothorax is missed and study 2's effusion called on the other side (still an effusion).
    written = [
        _sections("The heart is enlarged. Cardiomegaly."),
        _sections("Small left pleural effusion. Left pleural effusion."),
        _sections("No pneumothorax. No pleural effusion. No acute cardiopulmonary process."),
        _sections("Lungs are clear. No acute cardiopulmonary process."),
    ]
    truth = np.stack([positives(t) for t in REFERENCES])
    present = [LABELS[i] for i in np.flatnonzero(truth.any(axis=0))]
    assert set(present) == {"cardiomegaly", "pleural_effusion", "pneumothorax", "no_finding"}
    # cardiomegaly 1, effusion 1, pneumothorax 0 (missed), no_finding: 1 true + 1 false positive -> 2/3
    m = _metrics(written)
    assert m["generation_f1_macro"] == pytest.approx((1 + 1 + 0 + 2 / 3) / 4)
    per_finding = {key: value for key, value in m.items() if key.startswith("generation_f1_") and "macro" not in key}
    assert per_finding == pytest.approx(
        {
            "generation_f1_cardiomegaly": 1.0,
            "generation_f1_pleural_effusion": 1.0,
            "generation_f1_pneumothorax": 0.0,
            "generation_f1_no_finding": 2 / 3,
        }
    )
    assert m["generation_bleu4"] < 1.0 and m["generation_rougeL"] < 1.0
    predicted = np.stack([positives(f"{s.findings} {s.impression}") for s in written])
    assert f1_macro(truth, predicted, np.flatnonzero(truth.any(axis=0))) == pytest.approx(m["generation_f1_macro"])


def test_a_finding_no_reference_has_still_counts_when_written() -> None:
    """Writing pneumothorax into every report must cost F1 (it scores 0 for that finding), not go unseen."""
    clean = [_sections(t) for t in REFERENCES]
    invented = [Sections(s.findings + " There is a right pneumothorax.", "", s.impression) for s in clean]
    references = REFERENCES[:3]  # no pneumothorax among these
    groups = ["a", "b", "c"]
    kwargs = {"resamples": 10, "seed": 0}
    honest = generation_metrics(references, clean[:3], references, clean[:3], groups, **kwargs).metrics
    claimed = generation_metrics(references, invented[:3], references, clean[:3], groups, **kwargs).metrics
    assert honest["generation_f1_macro"] == pytest.approx(1.0)
    assert claimed["generation_f1_macro"] < honest["generation_f1_macro"]


def test_reasoning_consistency() -> None:
    argued = Sections("Enlarged heart.", "The cardiac silhouette is wide, so the heart is enlarged.", "Cardiomegaly.")
    unargued = Sections("Enlarged heart.", "The lungs are clear.", "Cardiomegaly.")
    contradicted = Sections("x.", "There is a right pneumothorax.", "No pneumothorax.")
    assert consistent(argued) is True
    hedged = Sections("x.", "Patchy airspace density without volume loss favours consolidation.", "Consolidation.")
    assert consistent(hedged) is True  # a reasoning that favours a finding argues for it
    assert consistent(unargued) is False
    assert consistent(contradicted) is False
    assert consistent(Sections("Enlarged heart.", "", "Cardiomegaly.")) is None  # nothing to judge
    assert consistency([argued, unargued, Sections("a", "", "b")]) == pytest.approx(0.5)
    m = _metrics([_sections(t) for t in REFERENCES])
    assert "reasoning_consistency" not in m and m["generation_reasoning_written_fraction"] == 0.0


def test_the_side_by_side_table_shows_text_only() -> None:
    from radpipe.evaluate.generation import GenerationResult

    table = markdown_rows(GenerationResult({}, {}, [("FINDINGS: a | b", "FINDINGS: c\nIMPRESSION: d"), ("x", "")]))
    lines = table.splitlines()
    assert lines[2] == "| 1 | FINDINGS: a / b | FINDINGS: c IMPRESSION: d |"
    assert lines[3] == "| 2 | x | (nothing written) |"
