"""Write the synthetic archive: OUT/dicom/**.dcm, OUT/reports/reports.jsonl and OUT/truth.jsonl.

With volumes, also OUT/volumes_manifest.json: each CT/MR series' UID and on-disk layout (series.py).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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
from radpipe.errors import RadpipeError
from radpipe.synth.drawing import draw_chest
from radpipe.synth.findings import Findings, State, sample_findings
from radpipe.synth.identities import Patient, make_patient, phi_sentence
from radpipe.synth.report_text import write_report
from radpipe.synth.series import SeriesCase, WrittenSeries, plan_series, write_volume_series

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
STUDIES_PER_PATIENT = 1.6
IMAGES_MISSING_FRACTION = 0.03  # report arrived, images not yet: reports/ must keep it
REPORT_MISSING_FRACTION = 0.03
# A chest CT often follows a chest film: half the volume studies go to a patient who has radiographs too.
VOLUME_SHARED_PATIENT_FRACTION = 0.5


@dataclass
class SynthSummary:
    studies: int = 0  # every study, radiograph and volume
    patients: int = 0
    instances: int = 0  # DICOM files: a multi-frame volume is one
    reports: int = 0
    transfer_syntaxes: dict[str, int] = field(default_factory=dict)
    volume_studies: int = 0  # of `studies`, the CT/MR ones
    volume_series: int = 0


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["radpipe-synth", str(seed), *map(str, parts)])


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


def write_archive(
    out: Path,
    studies: int,
    seed: int = 0,
    phi: bool = False,
    volumes: int = 0,
    on_study: Callable[[], None] | None = None,
    workers: int = 1,
) -> SynthSummary:
    """Generate `studies` chest radiograph studies and `volumes` CT/MR studies (and their reports) under `out`.

    Studies are planned in order in this process (every random draw that decides what exists and who owns it),
    then drawn, encoded and written here (`workers` 1, the default) or by a pool of `workers` spawned processes
    (the caller's main module must be import-safe, as for any spawn pool); the archive is the same file for
    file whatever the number of workers. `on_study` is called once per study written, radiograph or CT/MR.
    """
    if studies < 1:
        raise RadpipeError("--studies must be at least 1")
    if volumes < 0:
        raise RadpipeError("--volumes must be 0 or more")
    if workers < 1:
        raise RadpipeError("--workers must be at least 1")
    if (out / "dicom").exists() and any((out / "dicom").iterdir()):
        raise RadpipeError(f"{out}/dicom already holds files; choose an empty output folder")
    master = np.random.default_rng(seed)
    n_patients = max(1, round(studies / STUDIES_PER_PATIENT))
    patients = [make_patient(np.random.default_rng([seed, 1, i]), i, phi) for i in range(n_patients)]
    owners = list(range(n_patients)) + [int(master.integers(n_patients)) for _ in range(studies - n_patients)]
    summary = SynthSummary(studies=studies, patients=n_patients)
    plans: list[_StudyPlan | _VolumePlan] = []
    instances = 0  # written before each study: each instance takes the next transfer syntax in turn
    for index, owner in enumerate(owners[:studies]):
        plan = _plan_study(index, owner, patients[owner], seed, phi, instances)
        plans.append(plan)
        instances += len(plan.views)
    plans += _plan_volume_studies(volumes, seed, phi, patients, studies, summary)
    (out / "reports").mkdir(parents=True, exist_ok=True)
    written: list[WrittenSeries] = []
    render = partial(_render, out, seed, phi)
    with (
        open(out / "reports" / "reports.jsonl", "w") as reports,
        open(out / "truth.jsonl", "w") as truth,
        _mapper(len(plans), workers) as mapped,
    ):
        for result in mapped(render, plans):
            if result.report is not None:
                reports.write(result.report + "\n")
                summary.reports += 1
            truth.write(result.truth + "\n")
            summary.instances += len(result.transfer_syntaxes)
            for name in result.transfer_syntaxes:
                summary.transfer_syntaxes[name] = summary.transfer_syntaxes.get(name, 0) + 1
            if result.series is not None:
                written.append(result.series)
                summary.studies += 1
                summary.volume_studies += 1
                summary.volume_series += 1
            if on_study:
                on_study()
    if written:
        manifest = {
            "seed": seed,
            "cases": {s.case.value: s.series_instance_uid for s in written if s.case is not SeriesCase.STANDARD},
            "series": [s.manifest_row() for s in written],
        }
        (out / "volumes_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return summary


# Below this many studies a pool's start-up (each worker imports numpy, pydicom and the codecs) costs more than
# the drawing it would share.
POOL_FROM_STUDIES = 200


def default_workers(studies: int) -> int:
    """One process per core this process may use (at most 8) from POOL_FROM_STUDIES studies, else 1."""
    return min(len(os.sched_getaffinity(0)), 8) if studies >= POOL_FROM_STUDIES else 1


@contextmanager
def _mapper(tasks: int, workers: int) -> Iterator[Callable[..., Iterable[_Rendered]]]:
    """An ordered `map`: in this process, or over a pool of `workers` processes (spawned: no lock of a
    threaded caller is inherited)."""
    workers = min(workers, tasks)
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield partial(pool.map, chunksize=4)


@dataclass(frozen=True)
class _StudyPlan:
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
class _VolumePlan:
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
class _Rendered:
    """One study written: its report and truth lines, its instances' transfer syntaxes, its series if CT/MR."""

    report: str | None
    truth: str
    transfer_syntaxes: list[str]
    series: WrittenSeries | None = None


def _render(out: Path, seed: int, phi: bool, plan: _StudyPlan | _VolumePlan) -> _Rendered:
    if isinstance(plan, _StudyPlan):
        return _write_study(out, plan, seed, phi)
    return _write_volume_study(out, plan, seed, phi)


def _plan_study(index: int, owner: int, patient: Patient, seed: int, phi: bool, first_instance: int) -> _StudyPlan:
    """A radiograph study's existence, owner, findings and views (some studies have no images or no report)."""
    rng = np.random.default_rng([seed, 2, index])
    findings = sample_findings(rng)
    date = dt.date(2016, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 8)))
    study = {
        "uid": _uid(seed, "study", index),
        "accession": f"ACC{seed % 1000:03d}{index:07d}" if not phi else f"A{int(rng.integers(10**8, 10**9))}",
        "date": date.strftime("%Y%m%d"),
        "index": f"{index:05d}",
    }
    has_images = rng.random() >= IMAGES_MISSING_FRACTION
    has_report = rng.random() >= REPORT_MISSING_FRACTION or not has_images
    views = _views(rng, findings) if has_images else []
    return _StudyPlan(index, owner, patient, rng, findings, date, study, has_report, views, first_instance)


def _write_study(out: Path, plan: _StudyPlan, seed: int, phi: bool) -> _Rendered:
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
    return _Rendered(report, json.dumps(row), syntaxes)


def _plan_volume_studies(
    count: int, seed: int, phi: bool, patients: list[Patient], first_index: int, summary: SynthSummary
) -> list[_VolumePlan]:
    """`count` chest CT/MR studies of one series each (series.py), numbered on after the radiographs; half go to
    a patient who has radiographs too, the others to new patients (appended to `patients`)."""
    plans = []
    for number, (modality, case) in enumerate(plan_series(count)):
        rng = np.random.default_rng([seed, 3, number])
        index = first_index + number
        if rng.random() < VOLUME_SHARED_PATIENT_FRACTION:
            owner = int(rng.integers(len(patients)))
        else:
            owner = len(patients)
            patients.append(make_patient(np.random.default_rng([seed, 1, owner]), owner, phi))
            summary.patients += 1
        findings = sample_findings(rng)
        if modality is Modality.MR:
            # Tubes and lines do not show on MR (and rarely go into the scanner): the report must not claim one.
            findings = replace(findings, states={**findings.states, "support_devices": State.ABSENT})
        date = dt.date(2016, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 8)))
        study = {
            "uid": _uid(seed, "volume-study", number),
            "accession": f"ACC{seed % 1000:03d}{index:07d}" if not phi else f"A{int(rng.integers(10**8, 10**9))}",
            "date": date.strftime("%Y%m%d"),
            "index": f"{index:05d}",
        }
        plans.append(_VolumePlan(number, index, owner, patients[owner], rng, findings, modality, case, date, study))
    return plans


def _write_volume_study(out: Path, plan: _VolumePlan, seed: int, phi: bool) -> _Rendered:
    """One CT/MR study: its series, its report, its truth row."""
    study_folder = f"{plan.study['date']}_{plan.study['accession']}" if phi else f"study_{plan.study['index']}"
    series = write_volume_series(
        out / "dicom" / plan.patient.folder_name(phi, plan.owner) / study_folder,
        _dataset(plan.patient, plan.study, plan.modality.value, "", phi),
        plan.findings,
        plan.modality,
        plan.case,
        np.random.default_rng([seed, 4, plan.number]),  # its own stream: the report does not move with the pixels
        partial(_uid, seed, "volume", plan.number),
    )
    row, planted = _report_row(
        plan.rng, plan.patient, plan.study, plan.findings, plan.date, phi, technique=series.technique
    )
    truth = _truth_row(plan.index, plan.study, plan.patient, plan.findings, phi, planted, series)
    return _Rendered(json.dumps(row), json.dumps(truth), [series.transfer_syntax] * series.files, series)


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


def _views(rng: np.random.Generator, findings: Findings) -> list[tuple[str, str]]:
    """(modality, view) pairs: PA (+ lateral) in the department, AP portables on the ward."""
    modality = "DX" if rng.random() < 0.6 else "CR"
    if rng.random() < (0.6 if findings.present("support_devices") else 0.2):
        return [(modality, "AP")]
    views = [(modality, "PA")]
    if rng.random() < 0.4:
        views.append((modality, "LATERAL"))
    return views


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
    ds.SeriesInstanceUID = _uid(seed, "series", study["uid"], position)
    ds.SOPInstanceUID = _uid(seed, "instance", study["uid"], position)
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
