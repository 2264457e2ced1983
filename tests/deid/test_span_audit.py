"""The scrubber on annotated lines written before its rules (tests/deid/data): regression floors, not timings.

The figures themselves come from `radpipe bench --suite deid` (README). The held-out floor sits below the
measured value; the tuning half, which rules were written on, must stay whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from radpipe.deid.span_audit import measure_spans, scrub_line

DATA = Path(__file__).parent / "data"


def test_the_tuning_half_is_scrubbed_whole_and_its_clinical_lines_left_intact() -> None:
    measured = measure_spans(DATA / "scrub_tuning.jsonl")
    assert measured.spans >= 100 and measured.clinical_lines >= 40
    assert measured.recall == 1.0, measured.misses
    assert measured.retention == 1.0, measured.misses


@pytest.mark.parametrize(
    ("name", "recall", "retention"),
    [
        # seen since: their misses were fixed, so these are regression floors at the measured value
        ("scrub_heldout.jsonl", 0.99, 1.0),  # measured 0.991 / 1.000 (0.891 / 0.957 when unseen)
        ("scrub_heldout2.jsonl", 0.97, 1.0),  # measured 0.977 / 1.000 (0.867 / 1.000 when unseen)
        # unseen: written blind and only measured; the README's recall figure
        ("scrub_heldout3.jsonl", 0.83, 0.94),  # measured 0.826 / 0.941 unseen, 0.838 after the accent fix
    ],
)
def test_each_held_out_set_keeps_its_measured_floor(name: str, recall: float, retention: float) -> None:
    measured = measure_spans(DATA / name)
    assert measured.spans >= 100 and measured.clinical_lines >= 40
    assert measured.recall >= recall and measured.retention >= retention, (measured.recall, measured.retention)


def test_a_name_the_header_knows_goes_in_any_order_and_case() -> None:
    record = {"patient_name": "QUINTERRO^MARISOL", "patient_id": "00482913", "accession_number": None}
    for text in (
        "Discussed with QUINTERRO, MARISOL by phone.",
        "Discussed with marisol quinterro by phone.",
        "Patient Quinterro tolerated the exam; MRN 0048-2913.",
    ):
        scrubbed = scrub_line({"text": text, "record": record})
        assert "quinterro" not in scrubbed.lower() and "2913" not in scrubbed, scrubbed
    clinical = "Supraclavicular brown fat is physiologic."  # the patient Brown's name part, lower case: anatomy
    assert scrub_line({"text": clinical, "record": {"patient_name": "BROWN^LEO"}}) == clinical


def test_a_name_is_found_with_or_without_its_accents() -> None:
    """Headers and reports disagree on accents: GARCÍA in one, Garcia in the other (and the reverse)."""
    from radpipe.deid.span_audit import header_index

    accented = header_index({"patient_name": "GARCÍA LÓPEZ^MARÍA JOSÉ"})
    plain = header_index({"patient_name": "GARCIA LOPEZ^MARIA"})
    for index, text in (
        (accented, "Sra. Garcia Lopez ingresa"),
        (accented, "GARCÍA LÓPEZ, MARÍA"),
        (plain, "Paciente: García López, María"),
        (plain, "la sra. garcía lópez"),
    ):
        spans = index.spans(text)
        assert spans and all(kind == "person name" for _, _, kind in spans), text
        covered = "".join(text[start:end] for start, end, _ in spans).lower()
        assert "garc" in covered and "pez" in covered, (text, spans)


def test_an_id_written_apart_is_found_but_a_short_code_is_not_an_accession() -> None:
    """Open-i writes "pa/lat cxr,786.2" (an ICD-9 code); its accession numbers are CXR1..CXR3999."""
    from radpipe.deid.span_audit import header_index

    assert header_index({"accession_number": "NM2023-5510"}).spans("Bone scan (accession NM 2023/5510).")
    assert header_index({"patient_id": "K2290417"}).spans("Film library request: pt id K 229 0417.")
    assert header_index({"accession_number": "CXR786"}).spans("INDICATION: pa/lat cxr,786.2 XXXX") == []
