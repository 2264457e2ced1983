"""One synthetic study written to disk, from its plan (radpipe.synth.archive draws the plans in order): a
radiograph study's images, report and truth line, or a CT/MR study's series, report and truth line. Runs in
the archive's process or in a worker of its pool: nothing here depends on another study.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from radpipe.dicom.codes import Modality
from radpipe.synth.drawing import draw_chest
from radpipe.synth.findings import Findings
from radpipe.synth.identities import Patient, phi_sentence
from radpipe.synth.report_text import write_report
from radpipe.synth.series import SeriesCase, WrittenSeries, write_volume_series

TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
)


SOP_CLASS = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "CT": CTImageStorage,
    "MR": MRImageStorage,
}


SIZES = ((512, 512), (480, 600), (600, 480), (448, 448), (640, 512))


BITS_STORED = (8, 10, 12, 14, 16)


PIXEL_SPACINGS = (0.5, 0.6, 0.7, 0.8)


def uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["radpipe-synth", str(seed), *map(str, parts)])


@dataclass(frozen=True)
class StudyPlan:
    """A radiograph study as drawn so far: the generator goes on to draw its images and then its report."""

    index: int
    owner: int
    patient: Patient
    rng: np.random.Generator
    findings: Findings
    date: dt.date
    study: dict[str, str]
    has_report: bool
    views: list[tuple[str, str]]  # none when its images have not arrived
    first_instance: int


@dataclass(frozen=True)
class VolumePlan:
    """A CT/MR study of one series as drawn so far: its generator goes on to draw the report."""

    number: int
    index: int
    owner: int
    patient: Patient
    rng: np.random.Generator
    findings: Findings
    modality: Modality
    case: SeriesCase
    date: dt.date
    study: dict[str, str]


@dataclass(frozen=True)
class Rendered:
    """One study written: its report and truth lines, its instances' transfer syntaxes, its series if CT/MR."""

    report: str | None
    truth: str
    transfer_syntaxes: list[str]
    series: WrittenSeries | None = None


def render(out: Path, seed: int, phi: bool, plan: StudyPlan | VolumePlan) -> Rendered:
    if isinstance(plan, StudyPlan):
        return write_study(out, plan, seed, phi)
    return write_volume_study(out, plan, seed, phi)


def write_study(out: Path, plan: StudyPlan, seed: int, phi: bool) -> Rendered:
    """One radiograph study: its images, its report (if it has one), its truth row."""
    syntaxes = []
    for number, view in enumerate(plan.views, start=plan.first_instance + 1):
        transfer_syntax = TRANSFER_SYNTAXES[number % len(TRANSFER_SYNTAXES)]
        _write_image(
            out, plan.rng, plan.patient, plan.owner, plan.study, plan.findings, view, transfer_syntax, seed, phi
        )
        syntaxes.append(transfer_syntax.name)
    report: str | None = None
    planted: list[str] = []
    if plan.has_report:
        row, planted = _report_row(plan.rng, plan.patient, plan.study, plan.findings, plan.date, phi)
        report = json.dumps(row)
    has_images = bool(plan.views)
    row = _truth_row(
        plan.index,
        plan.study,
        plan.patient,
        plan.findings,
        phi,
        planted,
        has_images=has_images,
        has_report=plan.has_report,
    )
    return Rendered(report, json.dumps(row), syntaxes)


def write_volume_study(out: Path, plan: VolumePlan, seed: int, phi: bool) -> Rendered:
    """One CT/MR study: its series, its report, its truth row."""
    study_folder = f"{plan.study['date']}_{plan.study['accession']}" if phi else f"study_{plan.study['index']}"
    series = write_volume_series(
        out / "dicom" / plan.patient.folder_name(phi, plan.owner) / study_folder,
        _dataset(plan.patient, plan.study, plan.modality.value, "", phi),
        plan.findings,
        plan.modality,
        plan.case,
        np.random.default_rng([seed, 4, plan.number]),  # its own stream: the report does not move with the pixels
        partial(uid, seed, "volume", plan.number),
    )
    row, planted = _report_row(
        plan.rng, plan.patient, plan.study, plan.findings, plan.date, phi, technique=series.technique
    )
    truth = _truth_row(plan.index, plan.study, plan.patient, plan.findings, phi, planted, series)
    return Rendered(json.dumps(row), json.dumps(truth), [series.transfer_syntax] * series.files, series)


def _dataset(patient: Patient, study: dict[str, str], modality: str, view: str, phi: bool) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientSex = "O"
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    ds.StudyTime = "101500"
    ds.AccessionNumber = study["accession"]
    ds.StudyInstanceUID = study["uid"]
    ds.Modality = modality
    ds.BodyPartExamined = "CHEST"
    if view:  # projection radiographs only
        ds.ViewPosition = view
    ds.Manufacturer = "radpipe-synth"
    ds.SyntheticData = "YES"  # (0008,001C): never let a generated image pass for a real one
    if phi:
        ds.PatientBirthDate = patient.birth_date
        ds.PatientAddress = patient.address
        ds.PatientTelephoneNumbers = patient.phone
        ds.InstitutionName = patient.institution
        ds.ReferringPhysicianName = patient.referring_physician
        ds.OtherPatientIDs = patient.patient_id.replace("MRN", "ALT")
        ds.StudyID = study["accession"][-6:]
        ds.OperatorsName = patient.referring_physician
        block = ds.private_block(0x0011, "ACME PACS 1.0", create=True)
        block.add_new(0x01, "LO", patient.display_name)
        block.add_new(0x02, "LO", patient.patient_id)
    return ds


def _add_pixels(ds: Dataset, rng: np.random.Generator, attenuation: np.ndarray) -> np.ndarray:
    bits = int(BITS_STORED[int(rng.integers(len(BITS_STORED)))])
    monochrome1 = rng.random() < 0.3
    peak = (1 << bits) - 1
    unit = 1.0 - attenuation if monochrome1 else attenuation
    stored = np.rint(unit * peak).astype(np.uint8 if bits == 8 else np.uint16)
    spacing = float(PIXEL_SPACINGS[int(rng.integers(len(PIXEL_SPACINGS)))])
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [spacing, spacing]
    ds.ImagerPixelSpacing = [spacing, spacing]
    if rng.random() < 0.3:
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
    if rng.random() < 0.3:
        ds.WindowCenter = peak // 2
        ds.WindowWidth = peak
    ds.PixelData = stored.tobytes()
    return stored


def _write_instance(ds: Dataset, stored: np.ndarray, transfer_syntax: UID, path: Path) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if transfer_syntax in (RLELossless, JPEG2000Lossless, JPEGLSLossless):
        ds.compress(transfer_syntax, stored, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _write_image(
    out: Path,
    rng: np.random.Generator,
    patient: Patient,
    owner: int,
    study: dict[str, str],
    findings: Findings,
    view: tuple[str, str],
    transfer_syntax: UID,
    seed: int,
    phi: bool,
) -> None:
    modality, position = view
    ds = _dataset(patient, study, modality, position, phi)
    ds.SeriesInstanceUID = uid(seed, "series", study["uid"], position)
    ds.SOPInstanceUID = uid(seed, "instance", study["uid"], position)
    ds.SeriesNumber = 2 if position == "LATERAL" else 1
    ds.InstanceNumber = 1
    shape = SIZES[int(rng.integers(len(SIZES)))]
    stored = _add_pixels(ds, rng, draw_chest(rng, shape, findings, position))
    study_folder = f"{study['date']}_{study['accession']}" if phi else f"study_{study['index']}"
    folder = out / "dicom" / patient.folder_name(phi, owner) / study_folder
    _write_instance(ds, stored, transfer_syntax, folder / f"{position.lower()}_{ds.SeriesNumber}.dcm")


def _report_row(
    rng: np.random.Generator,
    patient: Patient,
    study: dict[str, str],
    findings: Findings,
    date: dt.date,
    phi: bool,
    technique: str = "",
) -> tuple[dict[str, str | None], list[str]]:
    """The report line, and the identifiers planted in its text (for measuring the scrubber)."""
    text, rationale = write_report(rng, findings)
    if technique:  # cross-sectional reports say how the images were made; the labeler skips this section
        text = f"TECHNIQUE: {technique}\n{text}"
    planted: list[str] = []
    if phi:
        sentence, planted = phi_sentence(rng, patient, date, study["accession"])
        text += "\n" + sentence
    keys = rng.random()
    row = {
        "accession_number": study["accession"] if keys < 0.9 else None,
        "study_instance_uid": study["uid"] if keys >= 0.7 else None,
        "patient_id": patient.patient_id,
        "report_date": date.isoformat(),
        "text": text,
        "rationale": rationale,
    }
    return row, planted


def _truth_row(
    index: int,
    study: dict[str, str],
    patient: Patient,
    findings: Findings,
    phi: bool,
    planted: list[str],
    series: WrittenSeries | None = None,
    has_images: bool = True,
    has_report: bool = True,
) -> dict[str, Any]:
    """A study's truth line; a CT/MR study's also says which series carries it and how it is laid out."""
    row: dict[str, Any] = {
        "study_index": index,
        "study_instance_uid": study["uid"],
        "accession_number": study["accession"],
        "patient_id": patient.patient_id,
        "findings": {k: int(v) for k, v in findings.states.items()},
        "has_images": has_images,
        "has_report": has_report,
        "phi": _phi_values(patient) if phi else [],
        "report_phi": planted,
    }
    if series is not None:
        row["volume"] = {
            "modality": series.modality.value,
            "series_instance_uid": series.series_instance_uid,
            "case": series.case.value,
        }
    return row


def _phi_values(patient: Patient) -> list[str]:
    """Every planted identifier, for the PHI gate and the scrubber's recall measurement."""
    family, given = patient.name.split("^")
    values = [
        patient.patient_id,
        family,
        given,
        patient.birth_date,
        patient.address,
        patient.phone,
        patient.institution,
        patient.referring_physician.split("^")[0],
    ]
    return [v for v in values if v]
