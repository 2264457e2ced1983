"""Volume profiles: CT/MR slices to a fixed spacing and size, stored as int16, and the channels a model sees.

Stored volumes keep physical meaning (HU for CT) so one stored dataset serves any window; the model's
input channels are made by `window_channels`, the one function both training and inference call.

CT: the modality LUT gives Hounsfield units, absolute across scanners, so each named window preset
(lung, mediastinum, bone) becomes one channel in [0, 1]: the model sees C = len(windows) channels.

MR: signal has no absolute scale (it depends on coil, sequence and gain), so windows would mean nothing.
Each series is instead normalised by its own robust percentiles (0.5th -> 0, 99.5th -> 1, clipped),
stored as int16 on a 0..PERCENTILE_SCALE grid, and `window_channels` returns that one channel. A model
that expects three channels (e.g. one shared with CT) repeats it, as greyscale radiographs are in 2D.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from radpipe.dicom.geometry import SeriesGeometry
from radpipe.errors import ConfigError

AIR_HU = -1000.0
# Stored MR values: the series' percentile range spans 0..PERCENTILE_SCALE, finer than 12-bit MR signal
# and far inside int16.
PERCENTILE_SCALE = 10000
# Percentiles are taken on about this many voxels, strided: the same answer to a grey level at a
# fraction of the cost of a full sort.
PERCENTILE_SAMPLE = 1 << 20
_INT16 = np.iinfo(np.int16)


class Intensity(StrEnum):
    """How a profile turns modality values into stored values and channels."""

    HU = "hu"  # CT: Hounsfield units, windowed into one channel per preset
    PERCENTILE = "percentile"  # MR: per-series robust percentiles, one channel


@dataclass(frozen=True)
class Window:
    """A named (center, width) window in HU; values map linearly to [0, 1] across it."""

    name: str
    center: float
    width: float

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ConfigError(f"window {self.name}: width must be positive")

    @property
    def low(self) -> float:
        return self.center - self.width / 2


# The usual chest CT presets; together they show aerated lung, soft tissue and bone, which no single
# 8-bit window can.
LUNG = Window("lung", -600.0, 1500.0)
MEDIASTINUM = Window("mediastinum", 50.0, 350.0)
BONE = Window("bone", 400.0, 1800.0)
CT_WINDOWS = (LUNG, MEDIASTINUM, BONE)


@dataclass(frozen=True)
class VolumeProfile:
    """A named, recorded 3D preprocessing recipe; a model trained on a profile is served with it."""

    name: str
    # Target voxel spacing (z, y, x) in mm: a fixed physical grid, so a voxel means the same size everywhere.
    spacing: tuple[float, float, float]
    # Target shape (D, H, W): centre crop/pad to it keeps batches stackable and memory predictable.
    size: tuple[int, int, int]
    intensity: Intensity = Intensity.HU
    # One model channel per window (CT); empty for percentile profiles.
    windows: tuple[Window, ...] = CT_WINDOWS
    # Percentile profiles: robust to a few hot voxels (vessels, fat, artefacts) that a min/max would chase.
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    # int16 holds every HU value a CT scanner writes, at half the bytes of float32.
    dtype: str = "int16"

    def __post_init__(self) -> None:
        if len(self.spacing) != 3 or min(self.spacing) <= 0:
            raise ConfigError(f"volume profile {self.name}: spacing needs three positive mm values (z, y, x)")
        if len(self.size) != 3 or min(self.size) < 1:
            raise ConfigError(f"volume profile {self.name}: size needs three positive voxel counts (D, H, W)")
        if self.dtype != "int16":
            raise ConfigError(f"volume profile {self.name}: dtype must be int16")
        if self.intensity is Intensity.HU and not self.windows:
            raise ConfigError(f"volume profile {self.name}: an HU profile needs at least one window")
        if self.intensity is Intensity.PERCENTILE and self.windows:
            raise ConfigError(f"volume profile {self.name}: a percentile profile takes no windows")
        if len({w.name for w in self.windows}) != len(self.windows):
            raise ConfigError(f"volume profile {self.name}: window names must be unique")
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise ConfigError(f"volume profile {self.name}: percentiles must satisfy 0 <= low < high <= 100")

    @property
    def fill(self) -> float:
        """The value outside the scanned field: air for CT, the low percentile (0) for MR."""
        return AIR_HU if self.intensity is Intensity.HU else 0.0

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the model's input channels, in order."""
        return tuple(w.name for w in self.windows) or ("intensity",)


VOLUME_PROFILES: dict[str, VolumeProfile] = {
    p.name: p
    for p in (
        # Merlin's recipe: 1.5 x 1.5 x 3 mm, centre crop/pad to 224 x 224 x 160 (~16 MB a volume as int16).
        VolumeProfile("ct-merlin", spacing=(3.0, 1.5, 1.5), size=(160, 224, 224)),
        # Small enough to train on a CPU in tests and the demo (256 KB a volume), with the same windows.
        VolumeProfile("ct-small", spacing=(6.0, 3.0, 3.0), size=(32, 64, 64)),
        VolumeProfile(
            "mr-small", spacing=(6.0, 3.0, 3.0), size=(32, 64, 64), intensity=Intensity.PERCENTILE, windows=()
        ),
    )
}


def get_volume_profile(name: str) -> VolumeProfile:
    try:
        return VOLUME_PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown volume profile {name!r}; known: {', '.join(sorted(VOLUME_PROFILES))}") from None


def to_hu(stored: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Modality LUT (linear rescale) of stored pixel values, as float32: HU for CT."""
    values = stored.astype(np.float32)
    if slope != 1.0:
        values *= np.float32(slope)
    if intercept != 0.0:
        values += np.float32(intercept)
    return values


def resample(volume: np.ndarray, spacing: Sequence[float], profile: VolumeProfile) -> np.ndarray:
    """Trilinear resampling of a (z, y, x) volume to the profile's spacing, centre cropped/padded to its size.

    Returns float32 of shape `profile.size`, `profile.fill` outside the scanned field. Works plane by
    plane, then along z, so memory stays near one input plane plus the output-sized stack.
    """
    if volume.ndim != 3:
        raise ValueError(f"expected a (z, y, x) volume, got shape {volume.shape}")
    return _resample_planes((plane.astype(np.float32, copy=False) for plane in volume), len(volume), spacing, profile)


def _resample_planes(
    planes: Iterable[np.ndarray], depth: int, spacing: Sequence[float], profile: VolumeProfile
) -> np.ndarray:
    """`depth` float32 (y, x) planes in z order, each resampled in-plane as it comes, then along z."""
    resampled = np.empty((depth, *profile.size[1:]), dtype=np.float32)
    for k, plane in enumerate(planes):
        resampled[k] = _resample_plane(plane, spacing[1:], profile)
    return _interpolate(resampled, 0, spacing[0], profile.spacing[0], profile.size[0], profile.fill)


def volume_from_slices(
    pixel_arrays_in_order: Sequence[np.ndarray] | np.ndarray, geometry: SeriesGeometry, profile: VolumeProfile
) -> np.ndarray:
    """The stored int16 volume of a series: modality LUT, resampling, crop/pad, and for MR its normalisation.

    Args:
        pixel_arrays_in_order: stored pixel values, one (rows, columns) array per slice, already in
            `geometry.order` (e.g. `[arrays[i] for i in geometry.order]`).
        geometry: the assembled series; its spacing and per-slice rescale are used.
    """
    depth, rows, columns = geometry.shape
    if len(pixel_arrays_in_order) != depth:
        raise ValueError(f"{len(pixel_arrays_in_order)} slices given for a geometry of {depth}")
    if any(a.shape != (rows, columns) for a in pixel_arrays_in_order):
        raise ValueError(f"every slice must be {rows} x {columns}")
    span = (
        _percentile_span(pixel_arrays_in_order, geometry, profile)
        if profile.intensity is Intensity.PERCENTILE
        else None
    )

    def values() -> Iterator[np.ndarray]:  # one full-resolution plane in memory at a time
        for stored, (slope, intercept) in zip(pixel_arrays_in_order, geometry.rescale, strict=True):
            plane = to_hu(stored, slope, intercept)
            if span is not None:
                # Normalise before resampling, so the fill (0) lands exactly on the series' low percentile.
                plane -= span[0]
                plane *= 1.0 / (span[1] - span[0])
                np.clip(plane, 0.0, 1.0, out=plane)
            yield plane

    volume = _resample_planes(values(), depth, geometry.spacing, profile)
    if span is not None:
        volume *= PERCENTILE_SCALE
    return np.clip(np.rint(volume), _INT16.min, _INT16.max).astype(np.int16)


def window_channels(volume: np.ndarray, profile: VolumeProfile) -> np.ndarray:
    """The model input for a stored volume: float32 [C, D, H, W] in [0, 1], one channel per profile channel."""
    out = np.empty((len(profile.channels), *volume.shape), dtype=np.float32)
    if profile.intensity is Intensity.PERCENTILE:
        out[0] = volume
        out[0] *= 1.0 / PERCENTILE_SCALE
    for channel, window in enumerate(profile.windows):
        out[channel] = volume
        out[channel] -= window.low
        out[channel] *= 1.0 / window.width
    return np.clip(out, 0.0, 1.0, out=out)


def _percentile_span(
    arrays: Sequence[np.ndarray] | np.ndarray, geometry: SeriesGeometry, profile: VolumeProfile
) -> tuple[float, float]:
    """The series' (low, high) percentile values, from a strided sample of every slice."""
    step = max(1, int(np.prod(geometry.shape)) // PERCENTILE_SAMPLE)
    sample = np.concatenate(
        [to_hu(a.reshape(-1)[::step], *rescale) for a, rescale in zip(arrays, geometry.rescale, strict=True)]
    )
    low, high = np.percentile(sample, [profile.low_percentile, profile.high_percentile])
    # A blank series (high == low) maps to all zeros rather than dividing by zero.
    return float(low), (float(high) if high > low else float(low) + 1.0)


def _resample_plane(plane: np.ndarray, spacing: Sequence[float], profile: VolumeProfile) -> np.ndarray:
    rows = _interpolate(plane, 0, spacing[0], profile.spacing[1], profile.size[1], profile.fill)
    return _interpolate(rows, 1, spacing[1], profile.spacing[2], profile.size[2], profile.fill)


def _interpolate(array: np.ndarray, axis: int, spacing: float, target: float, size: int, fill: float) -> np.ndarray:
    """Linear resampling along one axis onto `size` voxels of `target` mm, centred on the input's centre.

    Output voxels within half an input voxel of the edge take the edge value (a voxel stands for its
    whole width, so the physical extent is kept); beyond that they take `fill`. Trilinear is this,
    applied per axis.
    """
    if spacing <= 0 or target <= 0:
        raise ValueError("voxel spacing must be positive")
    n = array.shape[axis]
    index = np.arange(size, dtype=np.float64)
    if np.isclose(spacing, target, rtol=1e-6):
        # Same spacing: a whole-voxel crop/pad, never a half-voxel blur to centre an odd difference.
        coordinates = index + (n - size) // 2
    else:
        coordinates = (index - (size - 1) / 2) * (target / spacing) + (n - 1) / 2
    inside = (coordinates >= -0.5) & (coordinates <= n - 0.5)
    clamped = np.clip(coordinates, 0, n - 1)
    lower = np.floor(clamped).astype(np.intp)
    upper = np.minimum(lower + 1, n - 1)
    shape = [1] * array.ndim
    shape[axis] = size
    weight = (clamped - lower).astype(np.float32).reshape(shape)
    below = np.take(array, lower, axis=axis).astype(np.float32, copy=False)
    out = np.take(array, upper, axis=axis).astype(np.float32, copy=False)
    out -= below
    out *= weight
    out += below
    outside: list[slice | np.ndarray] = [slice(None)] * array.ndim
    outside[axis] = ~inside
    out[tuple(outside)] = fill
    return out


def _axis_map(n: int, spacing: float, target: float, size: int) -> tuple[float, float]:
    """(scale, offset) with input index = scale * output index + offset, exactly as _interpolate samples."""
    if np.isclose(spacing, target, rtol=1e-6):
        return 1.0, float((n - size) // 2)
    scale = target / spacing
    return scale, (n - 1) / 2 - (size - 1) / 2 * scale


def output_affine(geometry: SeriesGeometry, profile: VolumeProfile) -> list[float]:
    """The 4x4 affine (row-major) taking a stored volume's voxel index (z, y, x, 1) to patient LPS mm.

    Columns follow the source geometry: x along the row direction cosines, y along the column direction
    cosines, z along the slice normal, each scaled and offset the way resampling and centring placed them;
    so an oblique or off-centre volume keeps its place in patient space.
    """
    orientation = np.asarray(geometry.orientation, dtype=np.float64)
    row_cosines, column_cosines = orientation[:3], orientation[3:]
    normal = np.asarray(geometry.normal, dtype=np.float64)
    axes = (normal, column_cosines, row_cosines)  # index z, y, x
    affine = np.eye(4)
    affine[:3, 3] = geometry.origin
    for axis, direction in enumerate(axes):
        scale, offset = _axis_map(
            geometry.shape[axis], geometry.spacing[axis], profile.spacing[axis], profile.size[axis]
        )
        step = direction * geometry.spacing[axis]  # mm per input voxel along this axis
        affine[:3, axis] = step * scale
        affine[:3, 3] += step * offset
    return [float(v) for v in affine.ravel()]


MODEL_CHANNELS = 3


def to_model_volume(volume: np.ndarray, profile: VolumeProfile) -> np.ndarray:
    """A stored volumes/ row to the 3D encoder's input [3, D, H, W]: CT's three windows, MR's one repeated.

    The same function runs in the training data path and in the served model's `predict`.
    """
    channels = window_channels(volume, profile)
    if len(channels) == MODEL_CHANNELS:
        return channels
    return np.repeat(channels[:1], MODEL_CHANNELS, axis=0)
