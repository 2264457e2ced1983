"""Scrubbed descriptors are remembered per process: a warm memo must give exactly what scrubbing again gives."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from radpipe.deid import Deidentifier, Pseudonymizer
from radpipe.synth import write_archive
from tests.conftest import TEST_KEY
from tests.corpora import CORPORA, corpus_path


def _dump(ds: Dataset) -> list[tuple[int, str, Any]]:
    """Every element of a header, sequences item by item; pixel data by length (it is not de-identified)."""
    out: list[tuple[int, str, Any]] = []
    for element in ds:
        if element.VR == "SQ":
            out.append((int(element.tag), "SQ", [_dump(item) for item in element.value]))
        elif element.keyword == "PixelData":
            out.append((int(element.tag), element.VR, len(element.value or b"")))
        else:
            out.append((int(element.tag), element.VR, repr(element.value)))
    return out


def _files(tmp_path: Path) -> list[Path]:
    """Every readable file of the real corpora, and a generated archive's CT and MR series (many files each)."""
    write_archive(tmp_path, studies=2, seed=5, phi=True, volumes=2)
    candidates = [p for c in CORPORA for p in sorted(corpus_path(c.name).rglob("*")) if p.is_file()]
    candidates += sorted((tmp_path / "dicom").rglob("*.dcm"))
    readable = []
    for path in candidates:
        try:
            pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: S112 - gzipped or not DICOM: ingest quarantines those, nothing to compare
            continue
        readable.append(path)
    return readable


@pytest.mark.slow
def test_a_warm_memo_de_identifies_every_corpus_file_as_a_fresh_one_does(tmp_path: Path) -> None:
    files = _files(tmp_path)
    warm = Deidentifier(Pseudonymizer(TEST_KEY))  # one per process, as on an ingest worker
    compared = 0
    for path in files:
        try:
            expected = _dump(Deidentifier(Pseudonymizer(TEST_KEY)).dataset(pydicom.dcmread(path)))
        except Exception:  # noqa: S112 - a header ingest quarantines as malformed
            continue
        assert _dump(warm.dataset(pydicom.dcmread(path))) == expected, path.name
        compared += 1
    assert compared >= 100
    assert warm._descriptors.hits > 50  # the series' files repeat their descriptions: the memo was used


def test_a_pickled_deidentifier_carries_no_scrubbed_source_text() -> None:
    deid = Deidentifier(Pseudonymizer(TEST_KEY))
    deid.dataset(_header())
    assert len(deid._descriptors) == 1
    shipped = pickle.loads(pickle.dumps(deid))
    assert len(shipped._descriptors) == 0
    assert b"Quinterro" not in pickle.dumps(deid)
    scrubbed = deid.dataset(_header()).StudyDescription  # from the memo
    assert shipped.dataset(_header()).StudyDescription == scrubbed == "CHEST PA for [ID]"


def _header() -> Dataset:
    fresh = Dataset()
    fresh.PatientID, fresh.PatientName = "MRN-0042117", "Quinterro^Marisol"
    fresh.StudyDescription = "CHEST PA for Marisol Quinterro"
    return fresh


def test_one_description_under_two_patients_is_scrubbed_for_each() -> None:
    """The memo's key holds the header's own identifiers: the first name's result is not the second's."""
    warm = Deidentifier(Pseudonymizer(TEST_KEY))
    for name in ("Doe^Jane", "Quinterro^Marisol"):  # one patient ID (one date shift); the second name is in the text
        header = Dataset()
        header.PatientID, header.PatientName, header.StudyDescription = "ZT-88120", name, "CHEST QUINTERRO PROTOCOL"
        fresh = Deidentifier(Pseudonymizer(TEST_KEY)).dataset(copy.deepcopy(header)).StudyDescription
        assert warm.dataset(header).StudyDescription == fresh
    assert fresh == "CHEST [ID] PROTOCOL"
