"""Draw a chest phantom in 3D: a tissue map carrying a study's findings, rendered as CT (HU) or MR signal."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

from radpipe.synth.findings import Findings


class Tissue(IntEnum):
    """Tissue classes of the phantom; each renders to one CT density and one MR signal."""

    AIR = 0
    LUNG = 1
    FAT = 2
    MUSCLE = 3
    HEART = 4
    BONE = 5
    FLUID = 6
    LESION = 7
    CONSOLIDATION = 8
    DEVICE = 9


# Non-contrast CT densities. Fluid (8) and the soft tissues (40-50) are ~35 HU apart, about ten times the
# noise, so a reader can tell an effusion from consolidation voxel by voxel, as a radiologist does by ROI.
CT_HU: dict[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.LUNG: -850.0,
    Tissue.FAT: -100.0,
    Tissue.MUSCLE: 50.0,
    Tissue.HEART: 40.0,
    Tissue.BONE: 700.0,
    Tissue.FLUID: 8.0,
    Tissue.LESION: 40.0,
    Tissue.CONSOLIDATION: 42.0,
    Tissue.DEVICE: 1800.0,  # radio-opaque tube or line: denser than any bone
}
CT_NOISE_HU = 3.5
LUNG_TEXTURE_HU = 20.0  # smooth parenchymal texture, so lung is told from a pneumothorax's featureless air

# A T2-weighted-like contrast in arbitrary positive units: fluid brightest, fat bright, lung and bone dark.
MR_SIGNAL: dict[Tissue, float] = {
    Tissue.AIR: 0.0,
    Tissue.LUNG: 70.0,
    Tissue.FAT: 750.0,
    Tissue.MUSCLE: 320.0,
    Tissue.HEART: 300.0,
    Tissue.BONE: 150.0,
    Tissue.FLUID: 1100.0,
    Tissue.LESION: 340.0,
    Tissue.CONSOLIDATION: 360.0,
    Tissue.DEVICE: 0.0,  # a signal void; not drawn on MR (see archive)
}
MR_NOISE = 8.0
MR_BIAS = 0.06  # coil sensitivity: a smooth +-6% gain across the field of view

# Voxels of fat kept between aerated lung and the heart or chest wall: soft tissue touching aerated lung is
# then always a finding (nodule, consolidation), which is what lets a test read the findings back.
CLEARANCE_VOXELS = 2


@dataclass(frozen=True)
class Grid:
    """A series' voxel grid: array axes (slice, row, column) run along patient z (up), y (back), x (left)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # mm between slices, between rows, between columns

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable mm coordinates: z from the lowest slice, y and x from the slice centre."""
        (slices, rows, cols), (dz, dy, dx) = self.shape, self.spacing
        z = (np.arange(slices, dtype=np.float32) * dz).reshape(-1, 1, 1)
        y = ((np.arange(rows, dtype=np.float32) - (rows - 1) / 2) * dy).reshape(1, -1, 1)
        x = ((np.arange(cols, dtype=np.float32) - (cols - 1) / 2) * dx).reshape(1, 1, -1)
        return z, y, x


def sample_grid(rng: np.random.Generator) -> Grid:
    """A small CPU-friendly grid: 80-128 px in-plane over a 33-39 cm field, 24-48 slices of 2.5-5 mm.

    Pixels stay under 5 mm, as a scanner's do (validation holds instances to that).
    """
    size = int(rng.choice([80, 96, 112, 128]))
    pixel = round(float(rng.uniform(330, 390)) / size, 4)
    between = float(rng.choice([2.5, 3.0, 4.0, 5.0]))
    slices = int(np.clip(round(float(rng.uniform(160, 240)) / between), 24, 48))
    return Grid((slices, size, size), (between, pixel, pixel))


def _ellipsoid(
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    centre: tuple[float, float, float],
    radii: tuple[float, float, float],
) -> np.ndarray:
    """Inside an axis-aligned ellipsoid (z, y, x); an infinite z radius makes an in-plane cylinder."""
    (z, y, x), (cz, cy, cx), (rz, ry, rx) = axes, centre, radii
    return ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def _grow(mask: np.ndarray, voxels: int = CLEARANCE_VOXELS) -> np.ndarray:
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), bool), iterations=voxels)


@dataclass(frozen=True)
class _Lung:
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    mask: np.ndarray  # the aerated lung of this side before any finding
    outward: float  # +1 when lateral is +x (patient left), -1 otherwise


def draw_tissues(rng: np.random.Generator, grid: Grid, findings: Findings) -> np.ndarray:
    """A uint8 volume of Tissue codes: chest wall, spine, ribs, heart, lungs and the study's findings.

    Findings sit on the side the report names (`findings.sides`: 0 = patient right = low columns).
    Uncertain findings are drawn small, as the 2D generator draws them faint.
    """
    axes = grid.axes()
    z, y, x = axes
    shape = grid.shape
    extent = shape[0] * grid.spacing[0]
    jitter = lambda low, high: float(rng.uniform(low, high))  # noqa: E731 - a tiny local helper reads best here
    half_width = shape[2] * grid.spacing[2] * jitter(0.40, 0.44)
    half_depth = half_width * jitter(0.66, 0.74)
    y0 = jitter(-6, 6)
    fat, wall = jitter(8, 14), jitter(10, 14)
    inf = float("inf")
    cylinder = lambda dy, dx: _ellipsoid(axes, (0.0, y0, 0.0), (inf, dy, dx))  # noqa: E731
    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[np.broadcast_to(cylinder(half_depth, half_width), shape)] = Tissue.FAT
    tissue[np.broadcast_to(cylinder(half_depth - fat, half_width - fat), shape)] = Tissue.MUSCLE
    depth, width = half_depth - fat - wall, half_width - fat - wall  # the thoracic cavity
    cavity = np.broadcast_to(cylinder(depth, width), shape)
    tissue[cavity] = Tissue.FAT  # mediastinal and extrapleural fat fill what organs leave
    # Ribs: bands in the middle of the chest wall, descending anteriorly; a rib every ~25 mm.
    period = jitter(22, 28)
    in_wall = cylinder(depth + 0.75 * wall, width + 0.75 * wall) & ~cylinder(depth + 0.25 * wall, width + 0.25 * wall)
    tissue[np.broadcast_to(in_wall, shape) & ((z + 0.3 * (y - y0)) % period < 0.45 * period)] = Tissue.BONE
    spine = np.broadcast_to(_ellipsoid(axes, (0.0, y0 + depth - 6, 0.0), (inf, 16.0, 16.0)), shape)
    tissue[spine] = Tissue.BONE
    wall_keepout = _grow(~cavity | spine)

    heart_x, heart_y = 0.40 * width * jitter(0.97, 1.03), 0.48 * depth
    if findings.shown("cardiomegaly"):
        heart_x *= 1.4 if findings.present("cardiomegaly") else 1.2
        heart_y *= 1.12 if findings.present("cardiomegaly") else 1.06
    heart = _ellipsoid(axes, (0.38 * extent, y0 - 0.18 * depth, 0.12 * width), (0.2 * extent, heart_y, heart_x))
    heart &= ~wall_keepout
    tissue[heart] = Tissue.HEART
    keepout = wall_keepout | _grow(heart) | (np.abs(x) < 0.08 * width)

    lungs = []
    for outward in (-1.0, 1.0):  # the patient's right lung (image left), then the left
        centre = (0.52 * extent, y0 + 0.06 * depth, outward * 0.52 * width)
        radii = (0.42 * extent, 0.82 * depth, 0.44 * width)
        mask = _ellipsoid(axes, centre, radii) & ~keepout
        tissue[mask] = Tissue.LUNG
        lungs.append(_Lung(centre, radii, mask, outward))

    _draw_findings(rng, grid, tissue, lungs, findings)
    if findings.shown("support_devices"):
        _draw_device(rng, grid, tissue, y0 - 0.3 * depth, -0.04 * width)
    return tissue


def _draw_findings(
    rng: np.random.Generator, grid: Grid, tissue: np.ndarray, lungs: list[_Lung], findings: Findings
) -> None:
    """Consolidation, effusion, pneumothorax, then a nodule in what aerated lung is left."""
    axes = grid.axes()
    z, y, _ = axes
    if findings.shown("consolidation"):
        lung = lungs[findings.sides["consolidation"]]
        (cz, cy, cx), (rz, ry, rx) = lung.centre, lung.radii
        # Lateral, posterior and basal, reaching the pleura: airspace disease, not a round mass.
        big = findings.present("consolidation")
        centre = (cz - 0.3 * rz, cy + 0.25 * ry, cx + lung.outward * (0.6 if big else 0.75) * rx)
        radii = (0.35 * rz, 0.5 * ry, 0.55 * rx) if big else (0.2 * rz, 0.3 * ry, 0.3 * rx)
        tissue[_ellipsoid(axes, centre, radii) & lung.mask] = Tissue.CONSOLIDATION
    if findings.shown("pleural_effusion"):
        lung = lungs[findings.sides["pleural_effusion"]]
        (cz, cy, _), (rz, ry, _) = lung.centre, lung.radii
        # Supine: fluid layers posteriorly (high y), deepest at the base, thinning towards the apex.
        fraction = 0.38 if findings.present("pleural_effusion") else 0.18
        level = cy + ry * (1 - 2 * fraction) + 0.5 * ry * np.clip((z - (cz - rz)) / (2 * rz), 0, 1)
        tissue[lung.mask & (y > level)] = Tissue.FLUID
    if findings.shown("pneumothorax"):
        lung = lungs[findings.sides["pneumothorax"]]
        (cz, cy, cx), (rz, ry, rx) = lung.centre, lung.radii
        keep = 0.82 if findings.present("pneumothorax") else 0.93
        # The lung falls back from the anterior, lateral and apical wall: air rim, no lung texture.
        inner = _ellipsoid(
            axes,
            (cz - (1 - keep) * rz, cy + (1 - keep) * ry, cx - lung.outward * (1 - keep) * rx),
            (keep * rz, keep * ry, keep * rx),
        )
        tissue[lung.mask & ~inner & (tissue == Tissue.LUNG)] = Tissue.AIR
    if findings.shown("lung_lesion"):
        lung = lungs[findings.sides["lung_lesion"]]
        radius = float(rng.uniform(9, 13)) if findings.present("lung_lesion") else float(rng.uniform(3.5, 5))
        _draw_nodule(rng, grid, tissue, lung.mask, radius)


def _draw_nodule(rng: np.random.Generator, grid: Grid, tissue: np.ndarray, side: np.ndarray, radius: float) -> None:
    """A solid sphere wholly inside aerated lung, with lung all around it (a nodule, not pleural disease)."""
    aerated = side & (tissue == Tissue.LUNG)
    margin = CLEARANCE_VOXELS * max(grid.spacing)
    clearance = ndimage.distance_transform_edt(aerated, sampling=grid.spacing)
    candidates = np.argwhere(clearance > radius + margin)
    if len(candidates):
        centre = candidates[int(rng.integers(len(candidates)))]
    else:  # a lung crowded by other findings: the roomiest spot, and a nodule that fits
        centre = np.array(np.unravel_index(int(np.argmax(clearance)), clearance.shape))
        radius = max(float(clearance[tuple(centre)]) - margin, 0.0)
    z, y, x = grid.axes()
    dz, dy, dx = grid.spacing
    cz, cy, cx = (float(c) for c in (z.ravel()[centre[0]], y.ravel()[centre[1]], x.ravel()[centre[2]]))
    sphere = ((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2) & aerated
    sphere[tuple(centre)] = True  # even a nodule smaller than a voxel shows as one voxel
    tissue[sphere] = Tissue.LESION


def _draw_device(rng: np.random.Generator, grid: Grid, tissue: np.ndarray, y_line: float, x_line: float) -> None:
    """A tube or line coming down the mediastinum from the top slice, its tip above the heart."""
    z, y, x = grid.axes()
    extent = grid.shape[0] * grid.spacing[0]
    tip = float(rng.uniform(0.62, 0.72)) * extent
    sway = float(rng.uniform(-4, 4)) * np.sin(z / extent * np.pi)
    # At least as wide as a pixel's half-diagonal, so the line shows on every slice it passes.
    radius = max(2.0, 0.75 * max(grid.spacing[1:]))
    tube = ((y - y_line) ** 2 + (x - x_line - sway) ** 2 <= radius**2) & (z >= tip)
    tissue[tube & (tissue != Tissue.LUNG)] = Tissue.DEVICE


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _lookup(table: dict[Tissue, float]) -> np.ndarray:
    return np.array([table[t] for t in Tissue], dtype=np.float32)


def render_ct(rng: np.random.Generator, tissue: np.ndarray) -> np.ndarray:
    """Hounsfield units (float32) of a tissue map, with parenchymal texture and scanner noise."""
    hu = _lookup(CT_HU)[tissue]
    lung = tissue == Tissue.LUNG
    hu[lung] += LUNG_TEXTURE_HU * _smooth_noise(rng, tissue.shape, 1.2)[lung]
    hu += rng.normal(0.0, CT_NOISE_HU, tissue.shape).astype(np.float32)
    return hu


def render_mr(rng: np.random.Generator, tissue: np.ndarray) -> np.ndarray:
    """MR signal (float32, positive, arbitrary units) with a smooth coil bias and Rician noise."""
    slices, rows, cols = tissue.shape
    gradient = [rng.uniform(-1, 1) for _ in range(3)]
    z, y, x = (np.linspace(-1, 1, n, dtype=np.float32) for n in (slices, rows, cols))
    bias = 1 + MR_BIAS * np.clip(
        gradient[0] * z[:, None, None] + gradient[1] * y[None, :, None] + gradient[2] * x[None, None, :], -1, 1
    )
    signal = _lookup(MR_SIGNAL)[tissue] * bias
    # Magnitude images: noise in both channels, so air reads as a small positive floor, never negative.
    real = signal + rng.normal(0.0, MR_NOISE, tissue.shape).astype(np.float32)
    imaginary = rng.normal(0.0, MR_NOISE, tissue.shape).astype(np.float32)
    return np.sqrt(real**2 + imaginary**2)
