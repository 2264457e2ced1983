"""Volume profiles: modality LUT, resampling that keeps physical size, and the channels a model sees."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from radpipe.dicom.geometry import SeriesGeometry, SliceGeometry, assemble
from radpipe.errors import ConfigError
from radpipe.preprocess.volume import (
    AIR_HU,
    Intensity,
    VolumeProfile,
    Window,
    get_volume_profile,
    resample,
    to_hu,
    volume_from_slices,
    window_channels,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _sphere(shape: tuple[int, int, int], spacing: tuple[float, float, float], radius: float) -> np.ndarray:
    """Bone-dense (1000 HU) ball of `radius` mm at the volume's centre, in air."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    return np.where(z**2 + y**2 + x**2 <= radius**2, 1000.0, AIR_HU).astype(np.float32)


def _measured_radius(volume: np.ndarray, spacing: tuple[float, float, float]) -> tuple[float, list[float]]:
    """(radius of the ball with the same volume, half extent along each axis through the centre) in mm."""
    inside = volume > 0  # halfway between air and bone, where partial volume splits evenly
    equivalent = (3 * inside.sum() * np.prod(spacing) / (4 * np.pi)) ** (1 / 3)
    centre = tuple(n // 2 for n in volume.shape)
    halves = []
    for axis in range(3):
        line = np.moveaxis(inside, axis, 0)[(slice(None), *[c for a, c in enumerate(centre) if a != axis])]
        halves.append(line.sum() * spacing[axis] / 2)
    return float(equivalent), halves


def _series(depth: int, rows: int, columns: int, spacing: tuple[float, float, float]) -> SeriesGeometry:
    return assemble(
        [
            SliceGeometry((0.0, 0.0, k * spacing[0]), AXIAL, (spacing[1], spacing[2]), rows, columns)
            for k in range(depth)
        ]
    )


def test_registry_holds_merlins_recipe_and_rejects_unknown_names() -> None:
    merlin = get_volume_profile("ct-merlin")
    assert merlin.spacing == (3.0, 1.5, 1.5) and merlin.size == (160, 224, 224)
    assert merlin.channels == ("lung", "mediastinum", "bone") and merlin.dtype == "int16"
    assert get_volume_profile("mr-small").channels == ("intensity",)
    with pytest.raises(ConfigError, match="unknown volume profile 'ct-huge'; known: ct-merlin, ct-small, mr-small"):
        get_volume_profile("ct-huge")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spacing": (0.0, 1.0, 1.0)},
        {"size": (32, 64)},
        {"dtype": "float32"},
        {"windows": ()},
        {"intensity": Intensity.PERCENTILE},  # keeps the CT windows, which mean nothing for MR
        {"windows": (Window("lung", -600, 1500), Window("lung", 50, 350))},
    ],
)
def test_invalid_profiles_are_config_errors(kwargs: dict[str, object]) -> None:
    settings: dict[str, object] = {"spacing": (6.0, 3.0, 3.0), "size": (32, 64, 64), **kwargs}
    with pytest.raises(ConfigError):
        VolumeProfile("bad", **settings)  # type: ignore[arg-type]


def test_to_hu_applies_slope_and_intercept() -> None:
    stored = np.array([[0, 1024, 2048]], dtype=np.uint16)
    assert to_hu(stored, 1.0, -1024.0).tolist() == [[-1024.0, 0.0, 1024.0]]
    assert to_hu(stored, 0.5, -1000.0).tolist() == [[-1000.0, -488.0, 24.0]]
    assert to_hu(stored).dtype == np.float32


def test_to_hu_agrees_with_pydicom_on_its_bundled_ct() -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = to_hu(ds.pixel_array, float(ds.RescaleSlope), float(ds.RescaleIntercept))
    np.testing.assert_array_equal(hu, apply_modality_lut(ds.pixel_array, ds))


@pytest.mark.parametrize(
    "target",
    [
        VolumeProfile("coarse", spacing=(6.0, 3.0, 3.0), size=(32, 64, 64)),
        VolumeProfile("fine", spacing=(1.0, 0.5, 0.5), size=(60, 100, 100)),
    ],
)
def test_resampling_keeps_a_sphere_its_radius_in_mm(target: VolumeProfile) -> None:
    spacing = (2.5, 0.8, 0.8)
    radius = 20.0
    volume = _sphere((25, 70, 70), spacing, radius)

    out = resample(volume, spacing, target)

    assert out.shape == target.size and out.dtype == np.float32
    equivalent, halves = _measured_radius(out, target.spacing)
    assert abs(equivalent - radius) < min(target.spacing)
    for half, step in zip(halves, target.spacing, strict=True):
        assert abs(half - radius) <= step
    # The ball stays centred: its mass is symmetric about the middle of every axis.
    inside = out > 0
    for axis in range(3):
        profile = inside.sum(axis=tuple(a for a in range(3) if a != axis))
        np.testing.assert_array_equal(profile, profile[::-1])


def test_resampling_pads_with_air_beyond_the_scan_and_crops_within_it() -> None:
    profile = get_volume_profile("ct-small")  # 192 x 192 x 192 mm field
    small = np.zeros((10, 50, 50), dtype=np.float32)  # water, 50 x 100 x 100 mm
    padded = resample(small, (5.0, 2.0, 2.0), profile)
    assert padded[0, 0, 0] == AIR_HU and padded[16, 32, 32] == 0.0
    assert (padded == 0.0).sum() * np.prod(profile.spacing) == pytest.approx(50 * 100 * 100, rel=0.2)

    large = np.zeros((100, 300, 300), dtype=np.float32)  # water, 300 mm in every direction
    assert (resample(large, (3.0, 1.0, 1.0), profile) == 0.0).all()


def test_same_spacing_is_an_exact_crop() -> None:
    volume = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    profile = VolumeProfile("t", spacing=(2.0, 1.0, 1.0), size=(3, 4, 4))
    np.testing.assert_array_equal(resample(volume, (2.0, 1.0, 1.0), profile), volume[0:3, 1:5, 1:5])


def test_volume_from_slices_applies_each_slices_rescale() -> None:
    profile = get_volume_profile("ct-small")
    slices = []
    for k in range(20):
        # The same 40 HU tissue, written by two reconstructions with different rescale.
        slope, intercept = (1.0, -1024.0) if k % 2 else (0.5, -1000.0)
        geometry = SliceGeometry((0.0, 0.0, k * 5.0), AXIAL, (1.5, 1.5), 40, 40, None, None, slope, intercept)
        slices.append((geometry, np.full((40, 40), round((40 - intercept) / slope), dtype=np.uint16)))
    order = [1, 0, 3, 2] + list(range(4, 20))
    inputs = [slices[i] for i in order]
    geometry = assemble([g for g, _ in inputs])

    volume = volume_from_slices([inputs[i][1] for i in geometry.order], geometry, profile)

    assert volume.dtype == np.int16 and volume.shape == profile.size
    assert set(np.unique(volume)) == {-1000, 40}
    assert volume[16, 32, 32] == 40 and volume[0, 0, 0] == -1000
    with pytest.raises(ValueError, match="slices given"):
        volume_from_slices([a for _, a in inputs[:5]], geometry, profile)


def test_window_channels_follow_their_presets() -> None:
    profile = get_volume_profile("ct-small")
    volume = np.array([-1000, -600, 50, 400, 1000, 3000], dtype=np.int16).reshape(1, 1, 6)
    channels = window_channels(volume, profile)
    assert channels.shape == (3, 1, 1, 6) and channels.dtype == np.float32
    assert channels.min() >= 0.0 and channels.max() <= 1.0
    lung, mediastinum, bone = (channels[c, 0, 0] for c in range(3))
    assert mediastinum[0] == 0.0 and mediastinum[4] == 1.0  # air black, bone saturated in soft tissue
    assert lung[1] == pytest.approx(0.5) and mediastinum[2] == pytest.approx(0.5) and bone[3] == pytest.approx(0.5)
    assert 0.5 < bone[4] < 1.0 and bone[5] == 1.0  # the bone window still tells cortex from metal
    assert lung[0] > 0.0  # aerated lung is not clipped to black in the lung window


def test_mr_is_normalised_by_its_own_percentiles_so_gain_does_not_matter() -> None:
    profile = get_volume_profile("mr-small")
    rng = np.random.default_rng(0)
    depth, rows, columns = 24, 48, 48
    stored = np.rint(rng.normal(300, 40, size=(depth, rows, columns)).clip(0)).astype(np.uint16)
    stored[:, :8] = 0  # background
    stored[:, 20:30, 20:30] = 900  # a bright structure, 4% of voxels: above the 99.5th percentile
    geometry = _series(depth, rows, columns, (5.0, 4.0, 4.0))

    volume = volume_from_slices(stored, geometry, profile)
    brighter = volume_from_slices(stored * 3, geometry, profile)

    assert volume.dtype == np.int16 and volume.shape == profile.size
    assert np.abs(volume.astype(int) - brighter).max() <= 1  # rounding only
    channels = window_channels(volume, profile)
    assert channels.shape == (1, *profile.size)
    assert channels.min() == 0.0 and channels.max() == 1.0
    assert channels[0, 0, 0, 0] == 0.0  # padding outside the field reads as background


@pytest.mark.parametrize(
    "orientation",
    [
        AXIAL,
        (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),  # sagittal
        # double oblique: rows turned 0.5 rad in the axial plane, columns tilted 0.3 rad out of it
        (np.cos(0.5), np.sin(0.5), 0.0, -np.sin(0.5) * np.cos(0.3), np.cos(0.5) * np.cos(0.3), -np.sin(0.3)),
    ],
)
def test_the_affine_puts_a_voxel_where_it_was_in_patient_space(orientation: tuple[float, ...]) -> None:
    """A bright voxel at a known LPS point lands, through the stored volume's affine, back at that point."""
    from radpipe.preprocess.volume import output_affine

    profile = get_volume_profile("ct-small")
    rows = columns = 60
    depth, pixel, step = 30, (1.2, 1.1), 4.0
    row_cos, col_cos = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row_cos, col_cos)
    origin = np.array([-40.0, 25.0, 110.0])
    slices = [
        SliceGeometry(tuple(origin + k * step * normal), tuple(orientation), pixel, rows, columns) for k in range(depth)
    ]
    geometry = assemble(slices)
    assert geometry.ok
    k, r, c = 17, 22, 41  # the bright voxel: slice k, row r, column c
    arrays = [np.full((rows, columns), 24, dtype=np.uint16) for _ in range(depth)]
    for dk in (-1, 0, 1):  # a small blob survives resampling
        arrays[k + dk][r - 2 : r + 3, c - 2 : c + 3] = 3000
    point = origin + k * step * normal + r * pixel[0] * col_cos + c * pixel[1] * row_cos
    volume = volume_from_slices([arrays[i] for i in geometry.order], geometry, profile)
    brightest = np.array(np.unravel_index(np.argmax(volume), volume.shape), dtype=float)
    affine = np.array(output_affine(geometry, profile)).reshape(4, 4)
    found = affine @ np.append(brightest, 1.0)
    assert np.allclose(affine[3], [0, 0, 0, 1])
    assert np.linalg.norm(found[:3] - point) <= max(profile.spacing) * 1.5  # within a voxel or so
