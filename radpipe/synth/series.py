"""Write a chest phantom as a DICOM series: CT or MR slices, or one Enhanced CT object, in real-world layouts."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

from radpipe.dicom.codes import Modality
from radpipe.synth.findings import Findings
from radpipe.synth.phantom import Grid, draw_tissues, render_ct, render_mr, sample_grid


class SeriesCase(StrEnum):
    """How a series lies on disk; all but STANDARD are layouts met in real archives that ingest must survive."""

    STANDARD = "standard"  # one file per slice, named in InstanceNumber order
    SHUFFLED = "shuffled"  # hashed file names, InstanceNumbers in no slice order
    MISSING_SLICE = "missing_slice"  # one interior slice never arrived: a gap of twice the spacing
    DUPLICATE_POSITION = "duplicate_position"  # a second, different slice (own SOP UID) at one position
    MULTIFRAME = "multiframe"  # one Enhanced CT file holding every slice as a frame


REAL_LAYOUTS = (SeriesCase.SHUFFLED, SeriesCase.MISSING_SLICE, SeriesCase.DUPLICATE_POSITION, SeriesCase.MULTIFRAME)
MR_EVERY = 4  # one well-formed series in four is MR: chest imaging is mostly CT
ORIENTATION = [1, 0, 0, 0, 1, 0]  # axial: rows run to the patient's left, columns to the back


@dataclass(frozen=True)
class Encoding:
    """How HU or signal become stored values; scanners differ, and a reader must apply the modality LUT."""

    signed: bool
    bits_stored: int
    intercept: int | None  # None: no modality LUT (MR signal has no physical unit)

    def store(self, values: np.ndarray) -> np.ndarray:
        bits = self.bits_stored
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)
        stored = np.clip(np.rint(values - (self.intercept or 0)), low, high)
        return stored.astype("<i2" if self.signed else "<u2")


CT_ENCODINGS = (Encoding(False, 12, -1024), Encoding(True, 16, -1024), Encoding(True, 16, 0))
MR_ENCODING = Encoding(False, 12, None)


@dataclass(frozen=True)
class WrittenSeries:
    """What was written, for the manifest, the report's technique line and the summary (no identifiers)."""

    series_instance_uid: str
    modality: Modality
    case: SeriesCase
    sop_class_uid: str
    grid: Grid  # the complete grid; the files may lack a slice or repeat one, as `case` says
    files: int
    transfer_syntax: str
    detail: dict[str, float] = field(default_factory=dict)  # missing_slice_z / duplicate_slice_z

    @property
    def technique(self) -> str:
        thickness = f"{self.grid.spacing[0]:g} mm"
        if self.modality is Modality.MR:
            return f"MRI of the chest, axial T2-weighted images, {thickness} slices."
        return f"Non-contrast CT of the chest, axial {thickness} slices."

    def manifest_row(self) -> dict[str, Any]:
        return {
            "series_instance_uid": self.series_instance_uid,
            "modality": self.modality.value,
            "case": self.case.value,
            "sop_class_uid": self.sop_class_uid,
            "files": self.files,
            "positions": self.grid.shape[0],
            "shape": list(self.grid.shape),
            "spacing_mm": list(self.grid.spacing),
            "transfer_syntax": self.transfer_syntax,
            **self.detail,
        }


def plan_series(count: int) -> list[tuple[Modality, SeriesCase]]:
    """(modality, layout) of each volume study; from 4 on, the first four are the real-layout CT cases."""
    cases = list(REAL_LAYOUTS) if count >= len(REAL_LAYOUTS) else []
    plan = [(Modality.CT, case) for case in cases]
    for number in range(count - len(plan)):
        # With the cases in front, MR comes first among the rest, so --volumes 5 already holds one MR series.
        mr = number % MR_EVERY == (0 if cases else 1)
        plan.append((Modality.MR if mr else Modality.CT, SeriesCase.STANDARD))
    return plan


def write_volume_series(
    folder: Path,
    base: Dataset,
    findings: Findings,
    modality: Modality,
    case: SeriesCase,
    rng: np.random.Generator,
    uid: Callable[..., str],
) -> WrittenSeries:
    """Draw a phantom with `findings` and write it under `folder` as one series laid out as `case`.

    `base` holds the patient and study attributes; `uid(*parts)` makes this series' deterministic UIDs.
    """
    grid = sample_grid(rng)
    tissue = draw_tissues(rng, grid, findings)
    render = render_mr if modality is Modality.MR else render_ct
    values = render(rng, tissue)
    if modality is Modality.MR:
        encoding = MR_ENCODING
    else:
        encoding = CT_ENCODINGS[int(rng.integers(len(CT_ENCODINGS)))]
    slices, rows, cols = grid.shape
    dz, dy, dx = grid.spacing
    # The table puts the grid anywhere in patient space; z runs up the body from the lowest slice.
    x0 = round(-(cols - 1) / 2 * dx + float(rng.uniform(-10, 10)), 3)
    y0 = round(-(rows - 1) / 2 * dy + float(rng.uniform(-10, 10)), 3)
    z0 = float(rng.uniform(-320, -180))
    z = [round(z0 + k * dz, 3) for k in range(slices)]
    header = _series_header(base, modality, grid, encoding, uid)
    series_folder = folder / f"series_{header.SeriesNumber:03d}_{modality.value.lower()}"
    if case is SeriesCase.MULTIFRAME:
        frames = list(reversed(range(slices)))  # acquisition order: head first, top slice is frame 1
        ds = _enhanced(header, [z[k] for k in frames], (x0, y0), encoding.store(values[frames]), uid)
        _save(ds, series_folder / _hashed_name(ds.SOPInstanceUID), ExplicitVRLittleEndian)
        return WrittenSeries(
            header.SeriesInstanceUID, modality, case, EnhancedCTImageStorage, grid, 1, ExplicitVRLittleEndian.name
        )

    files, detail = _case_files(case, values, z, rng, uid, lambda k: render(rng, tissue[k : k + 1])[0])
    transfer_syntax = ExplicitVRLittleEndian if rng.random() < 0.7 else ImplicitVRLittleEndian
    for k, number, pixels, sop in files:
        ds = copy.deepcopy(header)
        ds.SOPInstanceUID = sop
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [x0, y0, z[k]]
        ds.ImageOrientationPatient = ORIENTATION
        ds.SliceLocation = z[k]
        ds.PixelData = encoding.store(pixels).tobytes()
        name = _hashed_name(sop) if case is SeriesCase.SHUFFLED else f"IM{number:04d}.dcm"
        _save(ds, series_folder / name, transfer_syntax)
    return WrittenSeries(
        header.SeriesInstanceUID, modality, case, header.SOPClassUID, grid, len(files), transfer_syntax.name, detail
    )


SliceFile = tuple[int, int, np.ndarray, str]  # (slice index, instance number, pixels, SOP instance UID)


def _case_files(
    case: SeriesCase,
    values: np.ndarray,
    z: list[float],
    rng: np.random.Generator,
    uid: Callable[..., str],
    redraw: Callable[[int], np.ndarray],
) -> tuple[list[SliceFile], dict[str, float]]:
    """The files of a single-frame series laid out as `case`, and what the case did (for the manifest)."""
    slices = len(z)
    # Head-first acquisition numbers the top slice 1.
    files = [(k, slices - k, values[k], uid("instance", k)) for k in range(slices)]
    detail: dict[str, float] = {}
    if case is SeriesCase.SHUFFLED:
        numbers = rng.permutation(slices) + 1
        files = [(k, int(numbers[k]), pixels, sop) for k, _, pixels, sop in files]
    elif case is SeriesCase.MISSING_SLICE:
        lost = int(rng.integers(2, slices - 2))
        files = [f for f in files if f[0] != lost]
        detail["missing_slice_z"] = z[lost]
    elif case is SeriesCase.DUPLICATE_POSITION:
        # A re-sent reconstruction: same place, fresh noise, its own SOP UID and the next free number.
        again = int(rng.integers(2, slices - 2))
        files.append((again, slices + 1, redraw(again), uid("instance", again, "again")))
        detail["duplicate_slice_z"] = z[again]
    return files, detail


def _series_header(
    base: Dataset, modality: Modality, grid: Grid, encoding: Encoding, uid: Callable[..., str]
) -> Dataset:
    """Attributes every slice of the series shares: series, frame of reference, pixel format, acquisition."""
    dz, dy, dx = grid.spacing
    ds = copy.deepcopy(base)
    ds.SOPClassUID = MRImageStorage if modality is Modality.MR else CTImageStorage
    ds.Modality = modality.value
    ds.SeriesInstanceUID = uid("series")
    ds.SeriesNumber = 3 if modality is Modality.MR else 2
    ds.FrameOfReferenceUID = uid("frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionNumber = 1
    ds.Rows, ds.Columns = grid.shape[1:]
    ds.PixelSpacing = [dy, dx]
    ds.SliceThickness = dz
    ds.SpacingBetweenSlices = dz
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = encoding.bits_stored
    ds.HighBit = encoding.bits_stored - 1
    ds.PixelRepresentation = int(encoding.signed)
    if modality is Modality.MR:
        ds.SeriesDescription = "T2 AX CHEST"
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "SK"
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = 2000
        ds.EchoTime = 90
        ds.EchoTrainLength = 16
        ds.MagneticFieldStrength = 1.5
        ds.ImagedNucleus = "1H"
    else:
        ds.SeriesDescription = f"CHEST W/O {dz:g}MM AXIAL"
        ds.KVP = 120
        ds.ConvolutionKernel = "STANDARD"
        ds.RescaleIntercept = encoding.intercept
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = [40, -600]  # mediastinum, lung
        ds.WindowWidth = [400, 1500]
    return ds


# Attributes an enhanced object carries in its functional groups instead of the top level.
_GROUPED = (
    "ImageType",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
)
_STACK_ID, _IN_STACK_POSITION, _FRAME_CONTENT = 0x00209056, 0x00209057, 0x00209111


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _enhanced(
    header: Dataset, positions: list[float], origin: tuple[float, float], frames: np.ndarray, uid: Callable[..., str]
) -> Dataset:
    """One Enhanced CT Image object: geometry and rescale in functional groups, a position per frame."""
    ds = copy.deepcopy(header)
    shared = _item(
        PixelMeasuresSequence=[
            _item(
                PixelSpacing=ds.PixelSpacing,
                SliceThickness=ds.SliceThickness,
                SpacingBetweenSlices=ds.SpacingBetweenSlices,
            )
        ],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=ORIENTATION)],
        PixelValueTransformationSequence=[
            _item(RescaleIntercept=ds.RescaleIntercept, RescaleSlope=ds.RescaleSlope, RescaleType="HU")
        ],
        FrameVOILUTSequence=[_item(WindowCenter=ds.WindowCenter, WindowWidth=ds.WindowWidth)],
        CTImageFrameTypeSequence=[_item(FrameType=["ORIGINAL", "PRIMARY", "AXIAL", "NONE"])],
    )
    for keyword in _GROUPED:
        delattr(ds, keyword)
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = uid("multiframe")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(positions)
    ds.ContentQualification = "PRODUCT"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.ManufacturerModelName = "phantom"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = "radpipe-synth"
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [
        _item(
            PlanePositionSequence=[_item(ImagePositionPatient=[origin[0], origin[1], z])],
            FrameContentSequence=[_item(StackID="1", InStackPositionNumber=n, DimensionIndexValues=[1, n])],
        )
        for n, z in enumerate(positions, start=1)
    ]
    organization = uid("dimension-organization")
    ds.DimensionOrganizationSequence = [_item(DimensionOrganizationUID=organization)]
    ds.DimensionIndexSequence = [
        _item(
            DimensionIndexPointer=pointer, FunctionalGroupPointer=_FRAME_CONTENT, DimensionOrganizationUID=organization
        )
        for pointer in (_STACK_ID, _IN_STACK_POSITION)
    ]
    ds.PixelData = frames.tobytes()
    return ds


def _hashed_name(sop_instance_uid: str) -> str:
    """A name like many PACS exports give: stable, unique, and unrelated to slice order."""
    return hashlib.sha1(sop_instance_uid.encode()).hexdigest()[:16].upper() + ".dcm"


def _save(ds: Dataset, path: Path, transfer_syntax: UID) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
