"""Where each slice sits in the patient, and whether a series' slices stack into a regular volume.

Slices are ordered by their distance along the slice normal (ImagePositionPatient . normal), never by
file name or InstanceNumber: both are routinely out of step with anatomy. Irregular stacks are not
repaired; their issues are recorded so ingest can quarantine them or keep them out of training.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydicom.dataset import Dataset

from radpipe.dicom.dimensions import TEMPORAL_POSITION_INDEX, classic_stack, rank_stacks, stack_key, temporal_index
from radpipe.dicom.numbers import (
    GeometryError,
    float_or,
    image_orientation,
    integer,
    optional_float,
    optional_integer,
    pair,
    vector3,
)

__all__ = [
    "GeometryError",
    "GeometryFinding",
    "GeometryIssue",
    "SeriesGeometry",
    "SliceGeometry",
    "assemble",
    "frame_geometries",
    "read_geometries",
    "slice_geometry",
]

# Direction cosines may differ by this much (about 0.06 degrees): vendors write six decimals, while a
# real change of angulation within a series is degrees.
ORIENTATION_TOLERANCE = 1e-3
# Relative pixel spacing agreement; one reconstruction writes the same spacing on every slice.
PIXEL_SPACING_TOLERANCE = 1e-3
# Slices closer than this along the normal sit at one position (positions carry ~1e-3 mm rounding).
DUPLICATE_TOLERANCE_MM = 0.01
# A step this many times the median spacing leaves room for at least one slice that is not there.
GAP_FACTOR = 1.5
# A step may differ from the median by this fraction before the spacing counts as non-uniform: within
# it, treating the stack as evenly spaced misplaces a slice by well under a voxel.
SPACING_TOLERANCE = 0.05
# Slices may drift in-plane (tilt, shear) by this fraction of a pixel: within it, stacking them straight
# misplaces nothing a model could see.
TILT_TOLERANCE_PIXELS = 0.5
# Fewer slices than this are a localizer or a fragment, not a volume.
MIN_SLICES = 3


class GeometryIssue(StrEnum):
    """Why a series' slices do not stack into a regular volume."""

    TOO_FEW_SLICES = "too_few_slices"
    INCONSISTENT_ORIENTATION = "inconsistent_orientation"
    INCONSISTENT_PIXEL_SPACING = "inconsistent_pixel_spacing"
    INCONSISTENT_SIZE = "inconsistent_size"
    MISSING_SLICE = "missing_slice"
    DUPLICATE_POSITION = "duplicate_position"
    GANTRY_TILT = "gantry_tilt"  # also any in-plane drift of the stack: positions not along the normal
    NON_UNIFORM_SPACING = "non_uniform_spacing"


@dataclass(frozen=True)
class GeometryFinding:
    """One issue with a short detail in counts and millimetres (never an identifier)."""

    issue: GeometryIssue
    detail: str

    def __str__(self) -> str:
        return f"{self.issue}: {self.detail}"


@dataclass(frozen=True)
class SliceGeometry:
    """One slice (or one frame of an enhanced object) placed in patient coordinates (LPS, mm)."""

    # ImagePositionPatient: centre of the first transmitted pixel.
    position: tuple[float, float, float]
    # ImageOrientationPatient: direction of a row (along increasing column), then of a column.
    orientation: tuple[float, float, float, float, float, float]
    # PixelSpacing: (between rows, between columns), i.e. (y, x) in mm.
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    # Informative only: slice spacing comes from positions, as thickness may overlap or leave gaps.
    slice_thickness: float | None = None
    # Informative only, never used to order (InStackPositionNumber for an enhanced frame).
    instance_number: int | None = None
    # Modality LUT: stored value * slope + intercept gives HU for CT.
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    # Which time point of a 4D acquisition (TemporalPositionIndex of an enhanced frame, or the classic
    # TemporalPositionIdentifier); None for a 3D series.
    temporal_position: int | None = None
    # Which sub-volume of an enhanced object, apart from time: its StackID and its index on every other
    # non-spatial dimension (a diffusion b-value, a gradient direction, an echo), e.g. "1" or
    # "1/DiffusionBValue=2"; None for a classic single-frame slice.
    stack: str | None = None

    def __post_init__(self) -> None:
        row, column = np.array(self.orientation[:3]), np.array(self.orientation[3:])
        unit = abs(np.linalg.norm(row) - 1) < 0.01 and abs(np.linalg.norm(column) - 1) < 0.01
        if not unit or abs(float(row @ column)) > 0.01:
            raise GeometryError("ImageOrientationPatient is not two orthogonal unit vectors")
        if min(self.pixel_spacing) <= 0:
            raise GeometryError("PixelSpacing must be positive")
        if self.rows <= 0 or self.columns <= 0:
            raise GeometryError("Rows and Columns must be positive")

    @property
    def normal(self) -> tuple[float, float, float]:
        """Unit slice normal: row direction x column direction."""
        normal = np.cross(self.orientation[:3], self.orientation[3:])
        x, y, z = (normal / np.linalg.norm(normal)).tolist()
        return (x, y, z)


@dataclass(frozen=True)
class SeriesGeometry:
    """How a series' slices stack: their order, the voxel grid, and what is wrong with it."""

    # Indices into the assembled input, in ascending position along the normal.
    order: tuple[int, ...]
    # Voxel spacing (z, y, x) in mm; z is the median step between distinct slice positions (with fewer
    # than two positions: the slice thickness, else 0.0, which resampling refuses).
    spacing: tuple[float, float, float]
    # (slices, rows, columns) of the stacked volume.
    shape: tuple[int, int, int]
    # Unit normal of the reference orientation; volume index z grows along it.
    normal: tuple[float, float, float]
    # The orientation most slices share, against which the others are checked.
    orientation: tuple[float, float, float, float, float, float]
    # Position of the first slice in order: the volume's corner voxel in patient coordinates.
    origin: tuple[float, float, float]
    # (slope, intercept) per slice, aligned with `order` so slice k of the volume uses rescale[k].
    rescale: tuple[tuple[float, float], ...]
    issues: tuple[GeometryFinding, ...]

    @property
    def ok(self) -> bool:
        """True when the slices stack into a regular volume with nothing to report."""
        return not self.issues

    @property
    def issue_kinds(self) -> frozenset[GeometryIssue]:
        return frozenset(finding.issue for finding in self.issues)


def slice_geometry(ds: Dataset) -> SliceGeometry:
    """The geometry of a single-frame CT/MR image; GeometryError names any missing attribute."""
    return SliceGeometry(
        position=vector3(ds, "ImagePositionPatient"),
        orientation=image_orientation(ds),
        pixel_spacing=pair(ds, "PixelSpacing"),
        rows=integer(ds, "Rows"),
        columns=integer(ds, "Columns"),
        slice_thickness=optional_float(ds, "SliceThickness"),
        instance_number=optional_integer(ds, "InstanceNumber"),
        rescale_slope=float_or(ds, "RescaleSlope", 1.0),
        rescale_intercept=float_or(ds, "RescaleIntercept", 0.0),
        temporal_position=optional_integer(ds, "TemporalPositionIdentifier"),
        stack=classic_stack(ds),
    )


def frame_geometries(ds: Dataset) -> list[SliceGeometry]:
    """The geometry of every frame of an Enhanced CT/MR object, per-frame groups overriding shared ones."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        raise GeometryError("missing PerFrameFunctionalGroupsSequence")
    frames = optional_integer(ds, "NumberOfFrames")
    if frames is not None and frames != len(per_frame):
        raise GeometryError("PerFrameFunctionalGroupsSequence does not hold one item per frame (NumberOfFrames)")
    shared_sequence = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_sequence[0] if shared_sequence else Dataset()
    rows, columns = integer(ds, "Rows"), integer(ds, "Columns")
    # The time point is the frame's rank along the temporal dimension, when the object declares one.
    pointers = [int(d.get("DimensionIndexPointer") or 0) for d in ds.get("DimensionIndexSequence") or []]
    temporal_dimension = pointers.index(TEMPORAL_POSITION_INDEX) if TEMPORAL_POSITION_INDEX in pointers else None
    geometries = []
    for number, item in enumerate(per_frame, start=1):
        where = f" in frame {number}"
        position = _macro(item, shared, "PlanePositionSequence", "ImagePositionPatient", where)
        orientation = _macro(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient", where)
        measures = _macro(item, shared, "PixelMeasuresSequence", "PixelSpacing", where)
        # MR often has no PixelValueTransformation: identity, or legacy top-level attributes.
        transform = _macro(item, shared, "PixelValueTransformationSequence", "RescaleSlope", where, ds)
        content = item.get("FrameContentSequence")
        geometries.append(
            SliceGeometry(
                position=vector3(position, "ImagePositionPatient", where),
                orientation=image_orientation(orientation, where),
                pixel_spacing=pair(measures, "PixelSpacing", where),
                rows=rows,
                columns=columns,
                slice_thickness=optional_float(measures, "SliceThickness", where=where),
                instance_number=optional_integer(content[0], "InStackPositionNumber") if content else None,
                rescale_slope=float_or(transform, "RescaleSlope", 1.0, where),
                rescale_intercept=float_or(transform, "RescaleIntercept", 0.0, where),
                temporal_position=temporal_index(content[0], temporal_dimension, bool(pointers)) if content else None,
                stack=stack_key(content[0], pointers) if content else None,
            )
        )
    return rank_stacks(geometries)


def read_geometries(ds: Dataset) -> list[SliceGeometry]:
    """Every slice a dataset holds: its frames when it is an enhanced multi-frame object, else itself."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        return frame_geometries(ds)
    return [slice_geometry(ds)]


def assemble(slices: Sequence[SliceGeometry]) -> SeriesGeometry:
    """Order slices along their normal, measure the voxel grid, and record every geometry issue."""
    if not slices:
        raise GeometryError("a series needs at least one slice")
    count = len(slices)
    orientations = np.array([s.orientation for s in slices])
    reference = slices[_mode_index([tuple(np.round(o, 3).tolist()) for o in orientations])]
    normal = np.array(reference.normal)
    positions = np.array([s.position for s in slices])
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    steps = np.diff(distance[order])
    duplicate = steps < DUPLICATE_TOLERANCE_MM
    distinct = steps[~duplicate]
    step = float(np.median(distinct)) if distinct.size else (reference.slice_thickness or 0.0)
    issues = _slice_issues(slices, reference, orientations)
    if duplicate.any():
        issues.append(
            GeometryFinding(
                GeometryIssue.DUPLICATE_POSITION, f"{int(duplicate.sum())} slice(s) share a position with another"
            )
        )
    issues += _spacing_issues(distinct, step)
    tilt = _tilt(positions[order], normal, min(reference.pixel_spacing))
    if tilt is not None:
        issues.append(GeometryFinding(GeometryIssue.GANTRY_TILT, tilt))
    first = positions[order[0]]
    return SeriesGeometry(
        order=tuple(int(i) for i in order),
        spacing=(step, *reference.pixel_spacing),
        shape=(count, reference.rows, reference.columns),
        normal=reference.normal,
        orientation=reference.orientation,
        origin=(float(first[0]), float(first[1]), float(first[2])),
        rescale=tuple((slices[i].rescale_slope, slices[i].rescale_intercept) for i in order),
        issues=tuple(issues),
    )


def _slice_issues(
    slices: Sequence[SliceGeometry], reference: SliceGeometry, orientations: np.ndarray
) -> list[GeometryFinding]:
    """Too few slices, or slices unlike the reference (the majority) in orientation, pixel spacing or size."""
    count = len(slices)
    issues = []
    if count < MIN_SLICES:
        issues.append(
            GeometryFinding(GeometryIssue.TOO_FEW_SLICES, f"{count} slice(s); a volume needs at least {MIN_SLICES}")
        )
    spacings = np.array([s.pixel_spacing for s in slices])
    unlike = {
        GeometryIssue.INCONSISTENT_ORIENTATION: (
            int((np.abs(orientations - np.array(reference.orientation)).max(axis=1) > ORIENTATION_TOLERANCE).sum()),
            "are oriented unlike the rest",
        ),
        GeometryIssue.INCONSISTENT_PIXEL_SPACING: (
            int((~np.isclose(spacings, reference.pixel_spacing, rtol=PIXEL_SPACING_TOLERANCE, atol=0)).any(1).sum()),
            "have another pixel spacing",
        ),
        GeometryIssue.INCONSISTENT_SIZE: (
            sum((s.rows, s.columns) != (reference.rows, reference.columns) for s in slices),
            "have another rows x columns",
        ),
    }
    for issue, (odd, what) in unlike.items():
        if odd:
            issues.append(GeometryFinding(issue, f"{odd} of {count} slices {what}"))
    return issues


def _spacing_issues(distinct: np.ndarray, step: float) -> list[GeometryFinding]:
    """Gaps (missing slices) and irregular steps between distinct positions, against the median step."""
    if not distinct.size or step <= 0:
        return []
    issues = []
    gaps = distinct[distinct > GAP_FACTOR * step]
    if gaps.size:
        missing = int(np.maximum(np.rint(gaps / step) - 1, 1).sum())
        issues.append(
            GeometryFinding(
                GeometryIssue.MISSING_SLICE,
                f"{gaps.size} gap(s) up to {gaps.max():.2f} mm against a {step:.2f} mm spacing: "
                f"about {missing} slice(s) missing",
            )
        )
    regular = distinct[distinct <= GAP_FACTOR * step]
    if (np.abs(regular - step) > SPACING_TOLERANCE * step).any():
        issues.append(
            GeometryFinding(
                GeometryIssue.NON_UNIFORM_SPACING,
                f"steps range {regular.min():.2f}-{regular.max():.2f} mm around a {step:.2f} mm median",
            )
        )
    return issues


def _tilt(ordered: np.ndarray, normal: np.ndarray, pixel: float) -> str | None:
    """A detail when slices drift in-plane, i.e. positions do not advance along the normal."""
    offsets = ordered - ordered[0]
    along = offsets @ normal
    drift = np.linalg.norm(offsets - np.outer(along, normal), axis=1)
    if drift.size == 0 or drift.max() <= TILT_TOLERANCE_PIXELS * pixel:
        return None
    angle = math.degrees(math.atan2(float(drift[-1]), abs(float(along[-1]))))
    return f"slices drift {drift.max():.2f} mm in-plane across the stack (about {angle:.1f} degrees off the normal)"


def _mode_index(keys: Sequence[Hashable]) -> int:
    """Index of the first item carrying the most common key: the majority is the reference."""
    common, _ = Counter(keys).most_common(1)[0]
    return list(keys).index(common)


def _macro(
    item: Dataset, shared: Dataset, sequence: str, keyword: str, where: str, fallback: Dataset | None = None
) -> Dataset:
    """The functional group macro holding `keyword`: this frame's, else the shared one, else `fallback`."""
    for group in (item, shared):
        macro = group.get(sequence)
        if macro and keyword in macro[0]:
            return macro[0]
    if fallback is not None:
        return fallback
    raise GeometryError(f"missing {keyword} ({sequence}){where}")
