"""Precision on real report text nobody here wrote: the scrubber may change only what is an identifier.

Open-i (English chest X-ray reports, NLM) had its identifiers replaced by XXXX before release; PadChest
(Spanish, BIMCV) keeps only the dates of earlier studies. Both come from torchxrayvision's wheel on PyPI
(`make corpora`). Every region the scrubber replaces must hold an XXXX (Open-i) or become [DATE] (PadChest):
anything else is a clinical word lost. The figures are in `radpipe bench --suite deid`.
"""

from __future__ import annotations

import itertools

from radpipe.deid.span_audit import (
    measure_precision,
    openi_explained,
    openi_sections,
    padchest_explained,
)
from radpipe.reports.padchest import physician_reports
from tests.corpora import openi_reports, padchest_csv


def test_open_i_sections_lose_no_clinical_word() -> None:
    sections = openi_sections(openi_reports())
    measured = measure_precision(sections, openi_explained)
    assert measured.texts > 14_000 and measured.changed > 5  # it does scrub: names around XXXX
    assert measured.unexplained == [], [(sections[i][:80], written) for i, written in measured.unexplained]


def test_padchest_reports_lose_only_dates() -> None:
    texts = [r.text for r in itertools.islice(physician_reports(padchest_csv()), 5000)]
    measured = measure_precision(texts, padchest_explained)
    assert measured.changed > 100  # PadChest's dates of earlier studies are scrubbed
    assert measured.unexplained == [], [(texts[i][:80], written) for i, written in measured.unexplained]
