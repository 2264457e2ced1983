"""Draw a chest radiograph-like attenuation image (1 = dense/bright) carrying a study's findings."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from radpipe.synth.findings import Findings


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = rng.standard_normal(shape).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(sigma, 0.5))
    return blurred / (blurred.std() + 1e-6)


Ellipse = tuple[float, float, float, float]  # centre y, centre x, radius y, radius x (fractions of the image)


@dataclass
class _Canvas:
    """The image being drawn, its coordinate grids (fractions of height and width) and its anatomy."""

    rng: np.random.Generator
    image: np.ndarray
    yy: np.ndarray
    xx: np.ndarray
    lungs: list[Ellipse]
    lung_mask: np.ndarray
    texture: np.ndarray
    lateral: bool

    def ellipse(self, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
        return _ellipse(self.yy, self.xx, cy, cx, ry, rx)


def draw_chest(rng: np.random.Generator, shape: tuple[int, int], findings: Findings, view: str) -> np.ndarray:
    """An HxW float32 attenuation map in [0, 1] with anatomy and the findings drawn in."""
    canvas, heart = _anatomy(rng, shape, view == "LATERAL")
    cy, cx, ry, rx = heart
    if findings.shown("cardiomegaly"):
        rx *= 1.55 if findings.present("cardiomegaly") else 1.3
        ry *= 1.15
    canvas.image[canvas.ellipse(cy, cx, ry, rx)] = 0.6
    side = {name: 0 if canvas.lateral else findings.sides[name] for name in findings.sides}
    if findings.shown("pleural_effusion"):
        _effusion(canvas, findings.present("pleural_effusion"), side["pleural_effusion"])
    if findings.shown("pneumothorax"):
        _pneumothorax(canvas, findings.present("pneumothorax"), side["pneumothorax"])
    if findings.shown("lung_lesion"):
        _lesion(canvas, findings.present("lung_lesion"), side["lung_lesion"], shape)
    if findings.shown("consolidation"):
        ly, lx, lry, lrx = canvas.lungs[side["consolidation"]]
        cy0 = ly + float(rng.uniform(0.0, 0.5)) * lry
        region = canvas.ellipse(cy0, lx, lry * 0.45, lrx * 0.8) & canvas.lung_mask
        patches = _smooth_noise(rng, shape, sigma=shape[1] / 60) > (0.0 if findings.present("consolidation") else 0.7)
        canvas.image[region & patches] += 0.28
    if findings.shown("support_devices"):
        _device(canvas, shape)
    image = canvas.image + rng.normal(0, 0.012, shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def _anatomy(rng: np.random.Generator, shape: tuple[int, int], lateral: bool) -> tuple[_Canvas, Ellipse]:
    """Body, lung fields with markings, ribs and spine; and where the heart goes."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    jitter = lambda scale: float(rng.normal(0, scale))  # noqa: E731 - a tiny local helper reads best here
    image = np.full(shape, 0.08, dtype=np.float32)
    body = _ellipse(yy, xx, 0.58 + jitter(0.01), 0.5 + jitter(0.01), 0.62, 0.47)
    image[body] = 0.45
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
    return _Canvas(rng, image, yy, xx, lungs, lung_mask, texture, lateral), heart


def _effusion(canvas: _Canvas, present: bool, side: int) -> None:
    bilateral = present and canvas.rng.random() < 0.4 and not canvas.lateral
    for lung in (0, 1) if bilateral else (side,):
        ly, lx, lry, lrx = canvas.lungs[lung]
        depth = 0.30 if present else 0.16
        # The fluid level climbs towards the chest wall (a meniscus), blunting the costophrenic angle.
        outward = (lx - canvas.xx) if (lung == 0 and not canvas.lateral) else (canvas.xx - lx)
        level = ly + lry * (1 - 2 * depth) - 0.14 * np.clip(outward / lrx, 0, 1)
        fluid = canvas.ellipse(ly, lx, lry, lrx) & (canvas.yy > level)
        canvas.image[fluid] = 0.55 + 0.01 * canvas.texture[fluid]


def _pneumothorax(canvas: _Canvas, present: bool, side: int) -> None:
    ly, lx, lry, lrx = canvas.lungs[side]
    collapse = 0.72 if present else 0.86
    outer = canvas.ellipse(ly, lx, lry, lrx)
    inner = canvas.ellipse(ly + lry * (1 - collapse), lx, lry * collapse, lrx * collapse)
    canvas.image[outer & ~inner] = 0.03  # lucent, and no markings
    edge = inner & ~canvas.ellipse(ly + lry * (1 - collapse), lx, lry * collapse - 0.006, lrx * collapse - 0.006)
    canvas.image[edge] = 0.32  # the visceral pleural line


def _lesion(canvas: _Canvas, present: bool, side: int, shape: tuple[int, int]) -> None:
    rng = canvas.rng
    ly, lx, lry, lrx = canvas.lungs[side]
    radius = (0.045 if present else 0.03) * float(rng.uniform(0.8, 1.3))
    ny = ly + float(rng.uniform(-0.5, 0.3)) * lry
    nx = lx + float(rng.uniform(-0.4, 0.4)) * lrx
    distance = np.sqrt(((canvas.yy - ny) / radius) ** 2 + ((canvas.xx - nx) * shape[1] / shape[0] / radius) ** 2)
    canvas.image += 0.38 * np.clip(1.2 - distance, 0, 1) * canvas.lung_mask


def _device(canvas: _Canvas, shape: tuple[int, int]) -> None:
    """A tube or line: a bright, thin curve from the neck into the mediastinum."""
    rng = canvas.rng
    t = np.linspace(0, 1, 200)
    x0 = 0.5 + float(rng.uniform(-0.08, 0.08))
    curve_x = x0 + float(rng.uniform(-0.06, 0.06)) * np.sin(t * np.pi)
    curve_y = 0.02 + t * float(rng.uniform(0.45, 0.6))
    points = np.stack([curve_x * shape[1], curve_y * shape[0]], axis=1).astype(np.int32)
    cv2.polylines(canvas.image, [points], isClosed=False, color=0.95, thickness=max(3, shape[1] // 100))
