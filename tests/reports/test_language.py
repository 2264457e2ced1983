"""Each report is labelled by its own language's rules; a language without rules gets null labels, counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radpipe.deid import Deidentifier
from radpipe.engine import SerialEngine
from radpipe.ingest.run import ingest
from radpipe.preprocess import get_profile
from radpipe.reports.label_rules import LABELS
from radpipe.reports.labeler import label_report
from radpipe.reports.language import detect_language
from radpipe.settings import get_settings
from tests.tables import read_delta


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("No pleural effusion or pneumothorax. Heart size is normal.", "en"),
        ("Derrame pleural derecho. Cardiomegalia. Sin neumotórax.", "es"),
        ("cambi pulmonar cronic sever . sign fibrosis bibasal .", "es"),  # PadChest's stemmed Spanish
        ("Kein Pleuraerguss. Herz normal groß. Kein Pneumothorax.", "und"),
        ("ok", "und"),
    ],
)
def test_the_language_of_a_report(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_spanish_rules_read_negation_uncertainty_and_stems() -> None:
    labels = label_report("Derrame pleural derecho. Sin neumotórax. Posible neumonía basal izquierda.", "es")
    assert labels["pleural_effusion"] == 1 and labels["pneumothorax"] == 0 and labels["pneumonia"] == -1
    assert labels["no_finding"] is None
    stemmed = label_report("sin hallazg patolog . sen costofren libr .", "es")
    assert stemmed["no_finding"] == 1 and stemmed["pleural_effusion"] == 0
    assert label_report("sign radiolog epoc . sin derram .", "es")["no_finding"] is None  # COPD: not normal


def test_a_language_without_rules_gets_no_labels_never_a_silent_normal() -> None:
    assert label_report("Kein Pleuraerguss. Herz normal groß.", "und") == dict.fromkeys(LABELS)


def test_ingest_labels_each_language_and_counts_the_rest(tmp_path: Path, deid: Deidentifier) -> None:
    reports = tmp_path / "reports.jsonl"
    lines = [
        {"accession_number": "A1", "text": "FINDINGS: Small right pleural effusion. IMPRESSION: Effusion."},
        {"accession_number": "A2", "text": "HALLAZGOS: Derrame pleural derecho. CONCLUSIÓN: Cardiomegalia."},
        {"accession_number": "A3", "text": "BEFUND: Kleiner Pleuraerguss rechts. BEURTEILUNG: Erguss."},
    ]
    reports.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = ingest(
        None, str(reports), str(tmp_path / "ds"), deid, get_profile("cxr-224"), SerialEngine(), home=get_settings().home
    )
    assert summary.reports_added == 3 and dict(summary.reports_unlabelled_language) == {"und": 1}
    rows = {r["language"]: r["labels"] for r in read_delta(tmp_path / "ds" / "reports").to_pylist()}
    assert rows["en"]["pleural_effusion"] == 1 and rows["es"]["pleural_effusion"] == 1
    assert rows["es"]["cardiomegaly"] == 1
    assert all(value is None for value in rows["und"].values())
