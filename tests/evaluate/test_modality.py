"""Zero-shot modality recognition (radpipe/evaluate/modality.py) on hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from radpipe.evaluate.modality import modality_metrics
from radpipe.model.exam import exam_line, other_modality, with_exam

# A toy text side: each examination line has its own direction.
AXES = {
    exam_line(k, b): i for i, (k, b) in enumerate((k, b) for k in ("radiograph", "CT", "MR") for b in ("chest", "head"))
}


def _embed(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), len(AXES)))
    for row, text in enumerate(texts):
        out[row, AXES[text]] = 1.0
    return out


def _rows(truth: list[tuple[str, str]], seen_as: list[tuple[str, str]]) -> dict[str, float]:
    embeddings = _embed([exam_line(k, b) for k, b in seen_as])
    groups = [f"study{i}" for i in range(len(truth))]
    kinds, parts = [k for k, _ in truth], [b for _, b in truth]
    return modality_metrics(embeddings, kinds, parts, _embed, groups, resamples=200, seed=0)


def test_each_row_is_scored_by_the_examination_it_is_closest_to() -> None:
    truth = [("radiograph", "chest")] * 4 + [("CT", "chest")] * 3 + [("MR", "head")]
    seen_as = [("radiograph", "chest")] * 3 + [("CT", "chest")] + [("CT", "chest")] * 3 + [("MR", "chest")]
    m = _rows(truth, seen_as)
    assert m["modality_accuracy"] == pytest.approx((3 / 4 + 1 + 1) / 3)  # balanced: the mean over modalities
    assert m["modality_accuracy_radiograph"] == pytest.approx(3 / 4) and m["modality_accuracy_CT"] == 1.0
    assert m["body_part_accuracy"] == pytest.approx(7 / 8)  # the MR head was taken for a chest
    assert m["modality_accuracy_ci_low"] <= m["modality_accuracy"] <= m["modality_accuracy_ci_high"]


def test_a_model_calling_everything_a_radiograph_scores_by_modality_not_by_row() -> None:
    truth = [("radiograph", "chest")] * 18 + [("CT", "chest"), ("MR", "chest")]
    m = _rows(truth, [("radiograph", "chest")] * 20)
    assert m["modality_accuracy"] == pytest.approx(1 / 3)  # 0.9 by row


def test_rows_are_scored_in_chunks_like_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import radpipe.evaluate.modality as modality

    truth = [("radiograph", "chest"), ("CT", "chest"), ("MR", "head")] * 3
    seen_as = [("radiograph", "chest"), ("MR", "chest"), ("MR", "head")] * 3
    whole = _rows(truth, seen_as)
    monkeypatch.setattr(modality, "ROWS", 2)
    assert _rows(truth, seen_as) == whole


def test_one_body_part_gives_no_body_part_accuracy_and_the_text_reads_as_trained() -> None:
    m = _rows([("radiograph", "chest"), ("CT", "chest")], [("radiograph", "chest"), ("MR", "chest")])
    assert m["modality_accuracy"] == 0.5 and "body_part_accuracy" not in m
    assert with_exam("No effusion.", "DX", "CHEST") == "Radiograph of the chest. No effusion."
    assert with_exam("No bleed.", "CT", "HEAD_NECK") == "CT of the head neck. No bleed."
    assert with_exam("Clear lungs.", None, None) == "Unknown examination. Clear lungs."
    assert with_exam("Liver normal.", "US", "ABDOMEN") == "Other examination of the abdomen. Liver normal."


def test_each_row_is_asked_on_the_reports_nearest_to_it() -> None:
    contexts = ["Heart enlarged.", "Lungs clear.", "Effusion."]
    prompts = [f"{exam_line(k, 'chest')} {c}" for k in ("radiograph", "CT", "MR") for c in contexts]
    axis = {text: i for i, text in enumerate(prompts)}

    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(axis)))
        for row, text in enumerate(texts):
            out[row, axis[text]] = 1.0
        return out

    # A radiograph of an enlarged heart: nearest to its own line before that report, though the CT lines before
    # the two other reports lie closer on the whole.
    row = embed(["Radiograph of the chest. Heart enlarged."])[0] * 0.9
    row += 0.5 * (embed(["CT of the chest. Lungs clear."])[0] + embed(["CT of the chest. Effusion."])[0])
    m = modality_metrics(row[None] / np.linalg.norm(row), ["radiograph"], ["chest"], embed, ["s"], 10, 0, contexts, 1)
    assert m["modality_accuracy"] == 1.0
    averaged = modality_metrics(
        row[None] / np.linalg.norm(row), ["radiograph"], ["chest"], embed, ["s"], 10, 0, contexts, 3
    )
    assert averaged["modality_accuracy"] == 0.0  # every report alike: the CT lines win on the sum


def test_a_volumes_hard_negative_is_the_other_volume_modality() -> None:
    # CT against MR is what a model of both learns least (a demo model called every short-coverage CT series MR);
    # a radiograph's negatives stay CT and MR, chosen by key.
    keys = [f"1.2.3.{n}" for n in range(40)]
    assert {other_modality("CT", key) for key in keys} == {"MR"}
    assert {other_modality("MR", key) for key in keys} == {"CT"}
    assert {other_modality("DX", key) for key in keys} == {other_modality("CR", key) for key in keys} == {"CT", "MR"}
    assert {other_modality("US", key) for key in keys} == {"DX", "CT", "MR"}
    assert [other_modality("DX", key) for key in keys[:6]] == ["CT", "CT", "CT", "CT", "MR", "MR"]  # by key (crc32)
