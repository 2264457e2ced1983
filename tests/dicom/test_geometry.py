"""Slice ordering and geometry checks on series built in memory, and on pydicom's bundled CT."""

from __future__ import annotations

import math
import random

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radpipe.dicom.geometry import (
    GeometryError,
    GeometryIssue,
    SeriesGeometry,
    assemble,
    frame_geometries,
    read_geometries,
    slice_geometry,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
STEP = 2.5


def _slice(
    position: tuple[float, float, float],
    *,
    instance: int = 1,
    orientation: tuple[float, ...] = AXIAL,
    spacing: tuple[float, float] = (0.7, 0.7),
    rows: int = 16,
    columns: int = 16,
) -> Dataset:
    ds = Dataset()
    ds.ImagePositionPatient = list(position)
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = list(spacing)
    ds.Rows, ds.Columns = rows, columns
    ds.SliceThickness = STEP
    ds.InstanceNumber = instance
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    return ds


def _axial_series(count: int = 10, step: float = STEP) -> list[Dataset]:
    return [_slice((-100.0, -120.0, 40.0 + k * step), instance=k + 1) for k in range(count)]


def _geometry(datasets: list[Dataset]) -> SeriesGeometry:
    return assemble([slice_geometry(ds) for ds in datasets])


def _z(ds: Dataset) -> float:
    return float(ds.ImagePositionPatient[2])


def test_shuffled_input_is_ordered_by_position_not_instance_number() -> None:
    series = _axial_series(12)
    rng = random.Random(7)
    rng.shuffle(series)
    lying = list(range(1, 13))
    rng.shuffle(lying)
    for ds, number in zip(series, lying, strict=True):
        ds.InstanceNumber = number  # unrelated to anatomy, as after a re-export

    geometry = _geometry(series)

    ordered = [_z(series[i]) for i in geometry.order]
    assert ordered == sorted(ordered)
    assert [series[i].InstanceNumber for i in geometry.order] != sorted(lying)
    assert geometry.ok and geometry.issues == ()
    assert geometry.spacing == pytest.approx((STEP, 0.7, 0.7))
    assert geometry.shape == (12, 16, 16)
    assert geometry.normal == pytest.approx((0.0, 0.0, 1.0))
    assert geometry.origin == pytest.approx((-100.0, -120.0, 40.0))
    assert geometry.rescale == ((1.0, -1024.0),) * 12


def test_a_missing_slice_is_reported_and_spacing_stays_the_median() -> None:
    series = _axial_series(10)
    del series[4]
    geometry = _geometry(series)
    assert geometry.issue_kinds == {GeometryIssue.MISSING_SLICE}
    assert not geometry.ok
    assert geometry.spacing[0] == pytest.approx(STEP)
    assert "about 1 slice(s) missing" in geometry.issues[0].detail


def test_two_slices_at_one_position_are_reported() -> None:
    series = _axial_series(10)
    series.append(_slice((-100.0, -120.0, 40.0 + 3 * STEP), instance=99))
    geometry = _geometry(series)
    assert geometry.issue_kinds == {GeometryIssue.DUPLICATE_POSITION}
    assert geometry.spacing[0] == pytest.approx(STEP)


def test_mixed_orientation_is_reported_against_the_majority() -> None:
    series = _axial_series(10)
    angle = math.radians(8)
    # The odd slice comes first in the input: the reference must still be the axial majority.
    series[0].ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, math.cos(angle), math.sin(angle)]
    geometry = _geometry(series)
    assert GeometryIssue.INCONSISTENT_ORIENTATION in geometry.issue_kinds
    assert geometry.normal == pytest.approx((0.0, 0.0, 1.0))
    assert "1 of 10" in str(geometry.issues[0])


def test_mixed_pixel_spacing_and_size_are_reported() -> None:
    series = _axial_series(10)
    series[3].PixelSpacing = [0.9, 0.9]
    series[6].Rows = 32
    geometry = _geometry(series)
    assert geometry.issue_kinds == {GeometryIssue.INCONSISTENT_PIXEL_SPACING, GeometryIssue.INCONSISTENT_SIZE}
    assert geometry.spacing[1:] == pytest.approx((0.7, 0.7))
    assert geometry.shape == (10, 16, 16)


def test_tilted_stacking_is_reported_with_its_angle() -> None:
    tilt = math.radians(15)
    series = [_slice((-100.0, -120.0 + k * STEP * math.tan(tilt), 40.0 + k * STEP), instance=k + 1) for k in range(10)]
    geometry = _geometry(series)
    assert geometry.issue_kinds == {GeometryIssue.GANTRY_TILT}
    assert "about 15.0 degrees" in geometry.issues[0].detail
    assert geometry.spacing[0] == pytest.approx(STEP)


def test_sub_pixel_position_jitter_is_not_tilt() -> None:
    series = _axial_series(10)
    for k, ds in enumerate(series):
        ds.ImagePositionPatient = [-100.0 + 0.01 * (k % 2), -120.0, 40.0 + k * STEP + 0.001 * (k % 3)]
    assert _geometry(series).ok


def test_uneven_steps_short_of_a_gap_are_non_uniform() -> None:
    positions = [0.0, 2.5, 5.0, 7.5, 10.8, 13.3, 15.8, 18.3]  # one 3.3 mm step among 2.5 mm steps
    geometry = _geometry([_slice((0.0, 0.0, z)) for z in positions])
    assert geometry.issue_kinds == {GeometryIssue.NON_UNIFORM_SPACING}


def test_too_few_slices_are_reported() -> None:
    geometry = _geometry(_axial_series(2))
    assert GeometryIssue.TOO_FEW_SLICES in geometry.issue_kinds
    single = _geometry(_axial_series(1))
    assert single.spacing[0] == STEP  # the slice thickness, since no step can be measured
    assert GeometryIssue.TOO_FEW_SLICES in single.issue_kinds


def test_oblique_series_is_ordered_along_its_own_normal() -> None:
    # A near-sagittal stack, rotated 20 degrees about z: its slices advance along x and y, and all share
    # one z, so any ordering by z or by input order is meaningless.
    angle = math.radians(20)
    row = (-math.sin(angle), math.cos(angle), 0.0)
    column = (0.0, 0.0, -1.0)
    normal = np.cross(row, column)
    origin = np.array([-30.0, -80.0, 60.0])
    series = [_slice(tuple(origin + k * 3.0 * normal), orientation=row + column, instance=1) for k in range(9)]
    rng = random.Random(3)
    shuffled = series[:]
    rng.shuffle(shuffled)

    geometry = _geometry(shuffled)

    assert [shuffled[i] for i in geometry.order] == series
    assert geometry.normal == pytest.approx(tuple(normal))
    assert geometry.spacing[0] == pytest.approx(3.0)
    assert geometry.ok


def _enhanced(series: list[Dataset]) -> Dataset:
    """The equivalent Enhanced CT object: one frame per slice, shared orientation and measures."""
    ds = Dataset()
    ds.Rows, ds.Columns = series[0].Rows, series[0].Columns
    ds.NumberOfFrames = len(series)
    shared = Dataset()
    orientation, measures, transform = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = series[0].ImageOrientationPatient
    measures.PixelSpacing = series[0].PixelSpacing
    measures.SliceThickness = series[0].SliceThickness
    transform.RescaleSlope, transform.RescaleIntercept = 1, -1024
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for slice_ds in series:
        position, frame = Dataset(), Dataset()
        position.ImagePositionPatient = slice_ds.ImagePositionPatient
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    return ds


def test_enhanced_frames_give_the_geometry_of_the_single_frame_series() -> None:
    series = _axial_series(8)
    random.Random(5).shuffle(series)
    enhanced = _enhanced(series)

    frames = assemble(frame_geometries(enhanced))
    singles = _geometry(series)

    assert (frames.order, frames.spacing, frames.shape, frames.normal) == (
        singles.order,
        singles.spacing,
        singles.shape,
        singles.normal,
    )
    assert frames.rescale == singles.rescale and frames.ok
    assert len(read_geometries(enhanced)) == 8


def test_per_frame_groups_override_shared_ones() -> None:
    enhanced = _enhanced(_axial_series(4))
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    enhanced.PerFrameFunctionalGroupsSequence[2].PixelMeasuresSequence = Sequence([measures])
    geometries = frame_geometries(enhanced)
    assert [g.pixel_spacing for g in geometries] == [(0.7, 0.7), (0.7, 0.7), (0.5, 0.5), (0.7, 0.7)]
    assert GeometryIssue.INCONSISTENT_PIXEL_SPACING in assemble(geometries).issue_kinds


def test_enhanced_frame_without_position_names_the_attribute_and_frame() -> None:
    enhanced = _enhanced(_axial_series(4))
    del enhanced.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    with pytest.raises(GeometryError, match=r"missing ImagePositionPatient \(PlanePositionSequence\) in frame 2"):
        frame_geometries(enhanced)
    enhanced.NumberOfFrames = 9
    with pytest.raises(GeometryError, match="NumberOfFrames"):
        frame_geometries(enhanced)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("ImagePositionPatient", None, "missing ImagePositionPatient"),
        ("PixelSpacing", [0.7], "PixelSpacing needs 2"),
        ("ImageOrientationPatient", [0, 0, 0, 0, 0, 0], "ImageOrientationPatient is not two orthogonal unit vectors"),
        ("PixelSpacing", [0.0, 0.7], "PixelSpacing must be positive"),
    ],
)
def test_bad_geometry_names_the_attribute_never_a_value(keyword: str, value: object, message: str) -> None:
    ds = _slice((-123.456, 0.0, 0.0))
    if value is None:
        delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    with pytest.raises(GeometryError, match=message) as raised:
        slice_geometry(ds)
    assert "123.456" not in str(raised.value) and "\n" not in str(raised.value)


def test_pydicom_bundled_ct_slice() -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    (geometry,) = read_geometries(ds)
    assert geometry.position == pytest.approx((-158.135803, -179.035797, -75.699997))
    assert geometry.orientation == AXIAL and geometry.normal == (0.0, 0.0, 1.0)
    assert geometry.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert (geometry.rows, geometry.columns, geometry.slice_thickness, geometry.instance_number) == (128, 128, 5.0, 1)
    assert (geometry.rescale_slope, geometry.rescale_intercept) == (1.0, -1024.0)
    # One slice is a fragment, not a volume: assembling it is allowed but never ok.
    assert GeometryIssue.TOO_FEW_SLICES in assemble([geometry]).issue_kinds


def _with_dimensions(enhanced: Dataset, pointers: list[int], values: list[list[int]], stacks: list[str]) -> Dataset:
    index = []
    for pointer in pointers:
        item = Dataset()
        item.DimensionIndexPointer = pointer
        index.append(item)
    enhanced.DimensionIndexSequence = Sequence(index)
    for frame, frame_values, stack_id in zip(enhanced.PerFrameFunctionalGroupsSequence, values, stacks, strict=True):
        content = Dataset()
        content.StackID = stack_id
        content.DimensionIndexValues = frame_values
        frame.FrameContentSequence = Sequence([content])
    return enhanced


STACK_ID, IN_STACK, B_VALUE = 0x00209056, 0x00209057, 0x00189087


def test_frames_at_one_position_on_another_dimension_make_separate_sub_volumes() -> None:
    """A diffusion object repeats every position once per b-value: each b-value is its own sub-volume."""
    positions = _axial_series(4)
    enhanced = _enhanced(positions + positions)  # b-value 1 then b-value 2 at the same four positions
    values = [[1, k + 1, 1] for k in range(4)] + [[1, k + 1, 2] for k in range(4)]
    geometries = frame_geometries(_with_dimensions(enhanced, [STACK_ID, IN_STACK, B_VALUE], values, ["1"] * 8))

    assert [g.stack for g in geometries] == ["1/DiffusionBValue=1"] * 4 + ["1/DiffusionBValue=2"] * 4
    assert GeometryIssue.DUPLICATE_POSITION in assemble(geometries).issue_kinds  # why they must be split
    assert assemble([g for g in geometries if g.stack == "1/DiffusionBValue=2"]).ok


def test_stack_ids_are_kept_as_ranks_never_as_source_text() -> None:
    enhanced = _enhanced(_axial_series(4))
    values = [[1, 1], [1, 2], [2, 1], [2, 2]]
    geometries = frame_geometries(_with_dimensions(enhanced, [STACK_ID, IN_STACK], values, ["AX", "AX", "COR", "COR"]))
    assert [g.stack for g in geometries] == ["1", "1", "2", "2"]


def test_a_classic_slice_names_its_b_value_and_a_later_echo() -> None:
    first, second = _axial_series(2)
    first.DiffusionBValue, first.EchoNumbers = 1000, 1
    second.EchoNumbers = 2
    assert [slice_geometry(first).stack, slice_geometry(second).stack] == ["DiffusionBValue=1000", "EchoNumbers=2"]
    assert slice_geometry(_axial_series(1)[0]).stack is None
