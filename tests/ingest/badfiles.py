"""Build real bad inputs, one per quarantine reason, next to a good synthetic archive."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless


def _save(ds: pydicom.Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def add_bad_files(dicom: Path) -> dict[str, str]:
    """Write bad files under `dicom/zz_bad/`; return file path -> expected quarantine reason."""
    good = sorted(dicom.rglob("*.dcm"))
    bad = dicom / "zz_bad"
    bad.mkdir()
    expected: dict[str, str] = {}

    (bad / "empty.dcm").write_bytes(b"")
    expected["empty.dcm"] = "empty_file"
    (bad / "notes.txt").write_text("Patient John Doe called, see chart.\n")
    expected["notes.txt"] = "not_dicom"

    native = next(p for p in good if pydicom.dcmread(p).file_meta.TransferSyntaxUID.name == "Explicit VR Little Endian")
    raw = native.read_bytes()
    (bad / "truncated.dcm").write_bytes(raw[: len(raw) // 2])
    expected["truncated.dcm"] = "truncated"

    ds = pydicom.dcmread(native)
    del ds.PixelData
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    _save(ds, bad / "no_pixels.dcm")
    expected["no_pixels.dcm"] = "no_pixels"

    ds = pydicom.dcmread(native)
    del ds.SOPInstanceUID
    _save(ds, bad / "no_uid.dcm")
    expected["no_uid.dcm"] = "inconsistent_header"

    ds = pydicom.dcmread(native)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.BitsStored = 20
    _save(ds, bad / "bits.dcm")
    expected["bits.dcm"] = "inconsistent_header"

    ds = pydicom.dcmread(native)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.PixelData = encapsulate([np.random.default_rng(0).bytes(5000)])
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    _save(ds, bad / "garbage_j2k.dcm")
    expected["garbage_j2k.dcm"] = "undecodable"

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Modality = "PT"  # neither radiography nor a CT/MR series radpipe assembles
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    _save(ds, bad / "pet_slice.dcm")
    expected["pet_slice.dcm"] = "outside_profile"

    ds = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    ds.Modality = "DX"
    ds.BurnedInAnnotation = "NO"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    (bad / "colour.dcm").write_bytes(buffer.getvalue())
    expected["colour.dcm"] = "outside_profile"  # converted to luminance (tests/dicom/test_colour.py); 100 px: too small

    ds = pydicom.dcmread(native)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.BurnedInAnnotation = "YES"
    _save(ds, bad / "burned_in.dcm")
    expected["burned_in.dcm"] = "burned_in_annotation"

    ds = pydicom.dcmread(native)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "OT"
    _save(ds, bad / "screenshot.dcm")
    expected["screenshot.dcm"] = "burned_in_risk"

    shutil.copy(good[0], bad / "copy_of_first.dcm")
    expected["copy_of_first.dcm"] = "duplicate"
    return {str(bad / name): reason for name, reason in expected.items()}


def add_bad_reports(reports: Path) -> int:
    """A second report file with broken lines, a CSV and an unsupported file; returns bad line count."""
    (reports / "more.jsonl").write_text(
        '{"accession_number": "NOPE1", "text": "FINDINGS: No effusion."}\n'
        '{"accession_number": "NOPE2", "text": \n'
        '{"accession_number": "NOPE3"}\n'
        '{"text": "FINDINGS: no key"}\n'
    )
    (reports / "extra.csv").write_text('accession_number,text\nNOPE4,"IMPRESSION: Cardiomegaly."\n')
    (reports / "scan.pdf").write_bytes(b"%PDF-1.4")
    return 4
