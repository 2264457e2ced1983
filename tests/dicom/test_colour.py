"""Colour and palette radiographs become luminance, the conversion recorded; a palette without tables is held."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radpipe.deid import Deidentifier
from radpipe.dicom.pixels import grey_pixels
from radpipe.ingest.dicom_file import IngestedInstance, process_dicom
from radpipe.ingest.quarantine import Quarantined
from radpipe.preprocess import get_profile
from radpipe.preprocess.acceptance import Acceptance
from tests.corpora import corpus_path


def _file(name: str) -> str:
    """pydicom's own test file, or pydicom-data's (fetched by make test)."""
    return get_testdata_file(name) or str(corpus_path("pydicom-data") / name)


# pydicom's colour samples are small: the size rule is tests/preprocess's, not what these tests exercise.
SMALL = replace(get_profile("cxr-224"), accepts=Acceptance(min_pixels=16, min_extent_mm=0))


def _radiograph(name: str, **changes: object) -> bytes:
    ds = pydicom.dcmread(_file(name))
    ds.Modality, ds.BodyPartExamined, ds.BurnedInAnnotation = "DX", "CHEST", "NO"
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["SC_rgb.dcm", "SC_rgb_rle.dcm", "SC_ybr_full_uncompressed.dcm", "OBXXXX1A.dcm"])
def test_a_colour_or_palette_image_becomes_its_luminance(name: str, deid: Deidentifier) -> None:
    ds = pydicom.dcmread(_file(name))
    photometric = str(ds.PhotometricInterpretation)
    grey, decoder = grey_pixels(ds)
    assert grey.shape == (ds.Rows, ds.Columns) and decoder.endswith(f"+luminance({photometric})")
    result = process_dicom(_radiograph(name), "k", "x", deid, SMALL)
    assert isinstance(result, IngestedInstance), result
    assert result.instance["decoder"].endswith(f"+luminance({photometric})")  # the conversion is recorded


def test_luminance_weighs_green_most() -> None:
    ds = pydicom.dcmread(_file("SC_rgb.dcm"))
    rgb = ds.pixel_array.astype(float)
    grey, _ = grey_pixels(ds)
    expected = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    np.testing.assert_array_equal(grey, expected.astype(grey.dtype))


def test_a_palette_image_without_its_tables_is_held_back(deid: Deidentifier) -> None:
    ds = pydicom.dcmread(_file("OBXXXX1A.dcm"))
    ds.Modality, ds.BodyPartExamined, ds.BurnedInAnnotation = "DX", "CHEST", "NO"
    for keyword in [k for k in ds.dir() if "PaletteColorLookupTable" in k]:
        delattr(ds, keyword)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    result = process_dicom(buffer.getvalue(), "k", "x", deid, SMALL)
    assert isinstance(result, Quarantined) and result.reason.value == "inconsistent_header"
    assert "PALETTE COLOR without its lookup tables" in result.detail
