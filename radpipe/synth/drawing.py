"""Draw a chest radiograph-like attenuation image (1 = dense/bright) carrying a study's findings."""

from __future__ import annotations

import cv2
import numpy as np

from radpipe.synth.findings import Findings


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = rng.standard_normal(shape).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(sigma, 0.5))
    return blurred / (blurred.std() + 1e-6)


def draw_chest(rng: np.random.Generator, shape: tuple[int, int], findings: Findings, view: str) -> np.ndarray:
    """An HxW float32 attenuation map in [0, 1] with anatomy and the findings drawn in."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    jitter = lambda scale: float(rng.normal(0, scale))  # noqa: E731 - a tiny local helper reads best here
    image = np.full(shape, 0.08, dtype=np.float32)
    body = _ellipse(yy, xx, 0.58 + jitter(0.01), 0.5 + jitter(0.01), 0.62, 0.47)
    image[body] = 0.45
    lateral = view == "LATERAL"
    if lateral:
        lungs = [(0.45 + jitter(0.01), 0.5 + jitter(0.01), 0.30, 0.28)]
        heart = (0.62, 0.36, 0.15, 0.11)
    else:
        lungs = [
            (0.45 + jitter(0.01), 0.31 + jitter(0.01), 0.30, 0.14),
            (0.45 + jitter(0.01), 0.69 + jitter(0.01), 0.30, 0.14),
        ]
        heart = (0.64, 0.54, 0.14, 0.12)
    texture = _smooth_noise(rng, shape, sigma=width / 150)
    lung_mask = np.zeros(shape, dtype=bool)
    for cy, cx, ry, rx in lungs:
        lung_mask |= _ellipse(yy, xx, cy, cx, ry, rx)
    # Lung fields: dark, with vessel-like markings (a pneumothorax is recognised by their absence).
    image[lung_mask] = 0.14 + 0.025 * texture[lung_mask]
    # Ribs: faint periodic arcs across the lungs.
    ribs = 0.5 + 0.5 * np.sin((yy + 0.15 * np.abs(xx - 0.5)) * 2 * np.pi * 9)
    image[lung_mask] += 0.04 * (ribs[lung_mask] > 0.75)
    if not lateral:
        spine = np.abs(xx - 0.5) < 0.045
        image[spine & body] = 0.62
    cy, cx, ry, rx = heart
    if findings.shown("cardiomegaly"):
        rx *= 1.55 if findings.present("cardiomegaly") else 1.3
        ry *= 1.15
    image[_ellipse(yy, xx, cy, cx, ry, rx)] = 0.6
    lung_index = lambda name: 0 if lateral else findings.sides[name]  # noqa: E731
    if findings.shown("pleural_effusion"):
        bilateral = findings.present("pleural_effusion") and rng.random() < 0.4 and not lateral
        for side in (0, 1) if bilateral else (lung_index("pleural_effusion"),):
            ly, lx, lry, lrx = lungs[side]
            depth = 0.30 if findings.present("pleural_effusion") else 0.16
            # The fluid level climbs towards the chest wall (a meniscus), blunting the costophrenic angle.
            outward = (lx - xx) if (side == 0 and not lateral) else (xx - lx)
            level = ly + lry * (1 - 2 * depth) - 0.14 * np.clip(outward / lrx, 0, 1)
            fluid = _ellipse(yy, xx, ly, lx, lry, lrx) & (yy > level)
            image[fluid] = 0.55 + 0.01 * texture[fluid]
    if findings.shown("pneumothorax"):
        ly, lx, lry, lrx = lungs[lung_index("pneumothorax")]
        collapse = 0.72 if findings.present("pneumothorax") else 0.86
        outer = _ellipse(yy, xx, ly, lx, lry, lrx)
        inner = _ellipse(yy, xx, ly + lry * (1 - collapse), lx, lry * collapse, lrx * collapse)
        rim = outer & ~inner
        image[rim] = 0.03  # lucent, and no markings
        edge = inner & ~_ellipse(yy, xx, ly + lry * (1 - collapse), lx, lry * collapse - 0.006, lrx * collapse - 0.006)
        image[edge] = 0.32  # the visceral pleural line
    if findings.shown("lung_lesion"):
        ly, lx, lry, lrx = lungs[lung_index("lung_lesion")]
        radius = (0.045 if findings.present("lung_lesion") else 0.03) * float(rng.uniform(0.8, 1.3))
        ny = ly + float(rng.uniform(-0.5, 0.3)) * lry
        nx = lx + float(rng.uniform(-0.4, 0.4)) * lrx
        distance = np.sqrt(((yy - ny) / radius) ** 2 + ((xx - nx) * width / height / radius) ** 2)
        image += 0.38 * np.clip(1.2 - distance, 0, 1) * lung_mask
    if findings.shown("consolidation"):
        ly, lx, lry, lrx = lungs[lung_index("consolidation")]
        cy0 = ly + float(rng.uniform(0.0, 0.5)) * lry
        region = _ellipse(yy, xx, cy0, lx, lry * 0.45, lrx * 0.8) & lung_mask
        patches = _smooth_noise(rng, shape, sigma=width / 60) > (0.0 if findings.present("consolidation") else 0.7)
        image[region & patches] += 0.28
    if findings.shown("support_devices"):
        # A tube or line: a bright, thin curve from the neck into the mediastinum.
        t = np.linspace(0, 1, 200)
        x0 = 0.5 + float(rng.uniform(-0.08, 0.08))
        curve_x = x0 + float(rng.uniform(-0.06, 0.06)) * np.sin(t * np.pi)
        curve_y = 0.02 + t * float(rng.uniform(0.45, 0.6))
        points = np.stack([curve_x * width, curve_y * height], axis=1).astype(np.int32)
        thickness = max(3, width // 100)
        cv2.polylines(image, [points], isClosed=False, color=0.95, thickness=thickness)
    image += rng.normal(0, 0.012, shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)
