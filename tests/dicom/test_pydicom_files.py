"""pydicom's own bundled files across transfer syntaxes go through the whole per-file path."""

import io
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from radpipe.dicom.pixels import decode_pixels
from radpipe.ingest.dicom_file import IngestedInstance, process_dicom
from radpipe.ingest.quarantine import Quarantined
from radpipe.preprocess import get_profile
from radpipe.preprocess.acceptance import Acceptance

# The same 64x64 MR image in six encodings: every path must decode it to identical pixels.
MR_SMALL = [
    "MR_small.dcm",  # explicit VR little endian
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
]


# pydicom's codec samples are 64 x 64 MR phantoms relabelled as radiographs: the profile's size rule is not what
# these tests exercise (tests/preprocess/test_acceptance.py covers it).
CODECS = replace(get_profile("cxr-224"), accepts=Acceptance(min_pixels=16, min_extent_mm=0))


def _as_radiograph(name: str) -> bytes:
    """The test file relabelled as a DX chest radiograph, keeping its transfer syntax.

    Some are secondary captures; they declare no burned-in text so the codec, not the privacy
    policy, is what these tests exercise (tests/deid covers the policy).
    """
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.BurnedInAnnotation = "NO"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("name", MR_SMALL)
def test_every_transfer_syntax_decodes_to_the_same_pixels(name: str, deid) -> None:
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    stored, decoder = decode_pixels(pydicom.dcmread(get_testdata_file(name)))
    np.testing.assert_array_equal(stored, reference)
    assert decoder


def test_content_hash_is_the_same_across_encodings(deid) -> None:
    hashes = set()
    for name in MR_SMALL:
        result = process_dicom(_as_radiograph(name), "k", name, deid, CODECS)
        assert isinstance(result, IngestedInstance), result
        hashes.add(result.instance["content_hash"])
        image = result.image
        pixels = np.frombuffer(image["pixels"], image["dtype"]).reshape(image["shape"])
        assert pixels.shape == (224, 224) and pixels.max() > 200
    assert len(hashes) == 1


@pytest.mark.parametrize("name", ["image_dfl.dcm", "JPEG2000.dcm", "JPGExtended.dcm"])
def test_other_codecs_decode(name: str, deid) -> None:
    result = process_dicom(_as_radiograph(name), "k", name, deid, CODECS)
    assert isinstance(result, IngestedInstance), result


def test_pydicoms_truncated_file_is_quarantined(deid) -> None:
    raw = open(get_testdata_file("MR_truncated.dcm"), "rb").read()
    result = process_dicom(raw, "k", "x", deid, CODECS)
    assert isinstance(result, Quarantined)
    assert result.reason.value in ("truncated", "outside_profile")


def test_a_ct_slice_becomes_an_instance_with_its_slice_in_hu(deid) -> None:
    raw = open(get_testdata_file("CT_small.dcm"), "rb").read()
    result = process_dicom(raw, "k", "x", deid, CODECS)
    assert isinstance(result, IngestedInstance) and result.image is None
    [row] = result.slices
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    expected = apply_modality_lut(source.pixel_array, source)
    np.testing.assert_array_equal(np.frombuffer(row["pixels"], row["dtype"]).reshape(row["shape"]), expected)
    assert row["series_instance_uid"] == result.instance["series_instance_uid"] != source.SeriesInstanceUID


def test_a_file_no_open_codec_decodes_is_quarantined_as_undecodable(deid) -> None:
    # 12-bit JPEG Extended: neither libjpeg (via pylibjpeg) nor GDCM decodes pydicom's sample.
    result = process_dicom(_as_radiograph("JPEG-lossy.dcm"), "k", "x", deid, CODECS)
    assert isinstance(result, Quarantined)
    assert result.reason.value == "undecodable" and result.stage.value == "pixels"


def _radiograph_with(**changes) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.Modality = "DX"
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_single_valued_pixel_spacing_means_square_pixels(deid) -> None:
    result = process_dicom(_radiograph_with(PixelSpacing="0.14"), "k", "x", deid, CODECS)
    assert isinstance(result, IngestedInstance)
    assert result.instance["pixel_spacing"] == [0.14, 0.14]


def test_a_constant_image_is_quarantined_as_blank(deid) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.Modality = "DX"
    ds.PixelData = np.full((ds.Rows, ds.Columns), 7, dtype=ds.pixel_array.dtype).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    result = process_dicom(buffer.getvalue(), "k", "x", deid, CODECS)
    assert isinstance(result, Quarantined) and result.reason.value == "blank_image"


def test_a_nan_window_falls_back_to_percentiles(deid) -> None:
    raw = _radiograph_with(WindowCenter="NaN", WindowWidth="inf")
    result = process_dicom(raw, "k", "x", deid, CODECS)
    assert isinstance(result, IngestedInstance)
    pixels = np.frombuffer(result.image["pixels"], result.image["dtype"])
    assert pixels.std() > 10
