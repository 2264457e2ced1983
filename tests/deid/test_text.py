"""Report scrubbing: recall on planted identifiers, and clinical content left intact."""

import datetime as dt
from pathlib import Path

import pytest

from radpipe.deid.audit import measure_scrubbing
from radpipe.deid.text import scrub_text
from radpipe.reports.labeler import label_report
from radpipe.synth import write_archive
from radpipe.synth.report_text import PHRASES

SHIFT = dt.timedelta(days=-400)


@pytest.fixture(scope="module")
def phi_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phi")
    write_archive(out, studies=150, seed=8, phi=True)
    return out


def test_recall_and_precision_on_the_synthetic_phi_archive(phi_archive: Path) -> None:
    measure = measure_scrubbing(phi_archive)
    assert measure.planted > 100
    assert measure.recall >= 0.99, measure
    assert measure.clinical_precision >= 0.99, measure
    assert measure.labels_unchanged == measure.reports


def test_every_clinical_phrase_the_synthesiser_writes_survives_intact() -> None:
    for by_state in PHRASES.values():
        for phrases in by_state.values():
            for phrase in phrases:
                text = phrase.format(side="left", Side="Left")
                assert scrub_text(text, SHIFT) == text


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Discussed with Dr. Okafor at 3 pm.", "Okafor"),
        ("Mr. Lindqvist tolerated the exam.", "Lindqvist"),
        ("Results called to Priya Sharma, RN.", "Priya Sharma"),
        ("Patient: Tanaka Hiroshi", "Tanaka Hiroshi"),
        ("MRN: 00481516 seen today.", "00481516"),
        ("Accession #: XR20231104-17 reviewed.", "XR20231104-17"),
        ("Call back at 555.867.5309 or +1 (212) 555-0199.", "867.5309"),
        ("Send images to radiology.fellow@hospital.example.org.", "radiology.fellow@"),
        ("Home address 42 Harbor View Drive, Fairview, TN 37062.", "42 Harbor View"),
        ("Prior exam at Northview Regional Medical Center.", "Northview Regional"),
        ("Prior exam on 3/14/2019 and on 2019-03-15.", "3/14/2019"),
        ("Compared with the study of July 4, 2018.", "July 4, 2018"),
        ("A 97-year-old woman with dyspnea.", "97-year-old"),
        ("Patient aged 102 years.", "102"),
    ],
)
def test_handwritten_identifier_forms_are_removed(text: str, gone: str) -> None:
    scrubbed = scrub_text(text, SHIFT)
    assert gone not in scrubbed, scrubbed


def test_dates_shift_with_the_patients_offset_and_keep_their_format() -> None:
    assert scrub_text("Seen on 02/27/2022.", dt.timedelta(days=-1)) == "Seen on 02/26/2022."
    assert scrub_text("Seen on 2022-02-27.", dt.timedelta(days=-1)) == "Seen on 2022-02-26."
    assert scrub_text("Seen on 02/27/2022.", None) == "Seen on [DATE]."  # no patient, no shift


def test_measurements_and_anatomy_are_not_identifiers() -> None:
    text = "A 2.5 x 3.1 cm mass at T12. C5-C6 disc narrowing. Tube tip 4 cm above the carina. Heart size is normal."
    assert scrub_text(text, SHIFT) == text
    assert label_report(scrub_text(text, SHIFT)) == label_report(text)


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Exam 2021-03-04T10:22:00 compared.", "2021-03-04"),
        ("Prior 3-4-2021 and 3.4.2021.", "2021"),
        ("Prior 2021/03/04 and 2021-3-4.", "2021"),
        ("RIS date 03-Jan-2021, 04MAR2021.", "2021"),
        ("Compared with March 2021.", "2021"),
        ("DR. MCALLISTER reviewed.", "MCALLISTER"),
        ("Attending radiologist: ZHANG WEI", "ZHANG"),
        ("Patient: KOWALSKI, ANNA", "KOWALSKI"),
        ("Dictated by: Kowalski, Anna MD", "Kowalski"),
        ("Electronically signed by: Jan Kowalski, M.D.", "Kowalski"),
        ("Drs. Lee and Park agreed.", "Park"),
        ("Dr. van der Berg", "Berg"),
        ("Read by: JK/ab", "JK/ab"),
        ("SSN 123-45-6789", "123-45-6789"),
        ("pager 555-1234, call x4567", "4567"),
        ("patient id KOW123", "KOW123"),
        ("92 y/o with cough", "92"),
        ("a 95M with cough", "95"),
        ("DOB: 1931", "1931"),
        ("Called on 04/2015.", "04/2015"),  # month and year: a date element beyond the year
        ("last seen 4-2019", "4-2019"),
    ],
)
def test_forms_found_in_review_are_removed(text: str, gone: str) -> None:
    assert gone not in scrub_text(text, SHIFT), scrub_text(text, SHIFT)


def test_two_digit_years_never_shift_into_the_future() -> None:
    assert scrub_text("Seen 3/4/68.", dt.timedelta(days=-1)) == "Seen 03/03/1968."
    assert scrub_text("Compared with 1/2 of the prior.", SHIFT) == "Compared with 1/2 of the prior."
