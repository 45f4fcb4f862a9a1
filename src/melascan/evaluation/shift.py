"""Appearance shifts for robustness checks: other dermatoscopes, cameras, lighting, and
the artefacts a clinic adds to a picture (surgical-marker ink, a ruler).

Pure functions on ``uint8`` RGB arrays. ``SHIFTS`` maps a name to a function that
returns the shifted image (the artefact painters with a fixed seed, so a probe is
repeatable; training draws them with its own generator, ``training.recipes``);
``look_distance`` scores how far an image's colour is from a reference (the training
set), to pick a held-back slice that "looks different".
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np


def _scale_channels(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * np.asarray(gains, np.float32), 0, 255).astype(np.uint8)


def warm_light(rgb: np.ndarray) -> np.ndarray:
    """A warm (tungsten-like) colour cast: red +15 %, blue -15 %."""
    return _scale_channels(rgb, (1.15, 1.0, 0.85))


def cool_light(rgb: np.ndarray) -> np.ndarray:
    """A cool (daylight/LED) colour cast: red -15 %, blue +15 %."""
    return _scale_channels(rgb, (0.85, 1.0, 1.15))


def darker(rgb: np.ndarray) -> np.ndarray:
    """Under-exposure: gamma 1.6 (mid-tones darker, highlights kept)."""
    x = rgb.astype(np.float32) / 255.0
    return np.clip(255.0 * np.power(x, 1.6), 0, 255).astype(np.uint8)


def brighter(rgb: np.ndarray) -> np.ndarray:
    """Over-exposure: gamma 0.6."""
    x = rgb.astype(np.float32) / 255.0
    return np.clip(255.0 * np.power(x, 0.6), 0, 255).astype(np.uint8)


def low_contrast(rgb: np.ndarray) -> np.ndarray:
    """Contrast halved around the image mean (a hazy, flat photo)."""
    x = rgb.astype(np.float32)
    mean = x.mean(axis=(0, 1), keepdims=True)
    return np.clip(mean + 0.5 * (x - mean), 0, 255).astype(np.uint8)


def phone_jpeg(rgb: np.ndarray) -> np.ndarray:
    """A soft phone photo: Gaussian blur (sigma 1.5 px) and JPEG quality 30."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), 1.5)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(blurred, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def dermoscope_frame(rgb: np.ndarray, radius_fraction: float = 0.48) -> np.ndarray:
    """A black circular dermatoscope frame: pixels outside a centred circle of radius
    ``radius_fraction`` x the shorter side are set to black."""
    h, w = rgb.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    outside = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 > (radius_fraction * min(h, w)) ** 2
    out = rgb.copy()
    out[outside] = 0
    return out


def zoom(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The same picture at ``factor`` times the magnification, same size: ``factor`` > 1 crops the
    centre ``1/factor`` of each side and enlarges it (the lesion fills more of the picture),
    ``factor`` < 1 shrinks the picture into a margin of its edge's median colour (more skin
    around the lesion, without mirrored copies of it), as another dermatoscope would frame it."""
    h, w = rgb.shape[:2]
    if factor >= 1:
        ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
        top, left = (h - ch) // 2, (w - cw) // 2
        return cv2.resize(rgb[top : top + ch, left : left + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
    edge = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    out = np.empty_like(rgb)
    out[:] = np.median(edge, axis=0).astype(rgb.dtype)
    top, left = (h - sh) // 2, (w - sw) // 2
    out[top : top + sh, left : left + sw] = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    return out


def downscale(rgb: np.ndarray, short_side_px: int) -> np.ndarray:
    """The picture shrunk (area interpolation) so its shorter side is at most ``short_side_px``:
    the detail a lower-resolution source keeps (HAM10000's copies here: 150 px)."""
    h, w = rgb.shape[:2]
    scale = short_side_px / min(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def zoom_in(rgb: np.ndarray) -> np.ndarray:
    """1.5x the magnification: the lesion's share of the picture grows 2.25-fold."""
    return zoom(rgb, 1.5)


def zoom_out(rgb: np.ndarray) -> np.ndarray:
    """2/3 the magnification: the lesion's share of the picture shrinks 2.25-fold."""
    return zoom(rgb, 2 / 3)


def _blend(rgb: np.ndarray, mask: np.ndarray, colour, opacity: float) -> np.ndarray:
    """``rgb`` with ``colour`` laid over it where ``mask`` (0-1 float, H x W) is set."""
    a = (opacity * mask)[..., None]
    return np.clip(rgb * (1.0 - a) + np.asarray(colour, np.float32) * a, 0, 255).astype(np.uint8)


def ink_marks(rgb: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Surgical-marker ink around the lesion, as a clinic draws it before an excision: one to
    three violet strokes (arcs of a circle round the centre at 30-48 % of the shorter side, or
    dots), 2-5 % of the side thick, laid translucently over the skin. ``rng`` draws every
    choice (default: a fixed seed, the same marks every call)."""
    rng = np.random.default_rng(0) if rng is None else rng
    h, w = rgb.shape[:2]
    side = min(h, w)
    mask = np.zeros((h, w), np.float32)
    centre = (w / 2 + rng.uniform(-0.05, 0.05) * side, h / 2 + rng.uniform(-0.05, 0.05) * side)
    for _ in range(int(rng.integers(1, 4))):
        thick = max(1, round(rng.uniform(0.02, 0.05) * side))
        radius = rng.uniform(0.30, 0.48) * side
        start = rng.uniform(0, 360)
        if rng.random() < 0.7:
            axes = (round(radius), round(radius * rng.uniform(0.8, 1.2)))
            cv2.ellipse(mask, (round(centre[0]), round(centre[1])), axes, rng.uniform(0, 180),
                        start, start + rng.uniform(30, 120), 1.0, thick, cv2.LINE_AA)
        else:
            for k in range(int(rng.integers(1, 4))):
                angle = np.deg2rad(start + 15 * k)
                dot = (round(centre[0] + radius * np.cos(angle)), round(centre[1] + radius * np.sin(angle)))
                cv2.circle(mask, dot, thick, 1.0, -1, cv2.LINE_AA)
    colour = (rng.uniform(60, 120), rng.uniform(20, 70), rng.uniform(110, 170))  # gentian violet
    return _blend(rgb, mask, colour, rng.uniform(0.5, 0.85))


def ruler(rgb: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """A millimetre scale along one edge of the picture (a long one, which a centre crop keeps),
    as printed on a dermatoscope's contact plate or laid beside the lesion: dark ticks every
    3-6 % of the shorter side (every fifth longer), on a light strip 8-14 % of the side wide
    half of the time. ``rng`` as ``ink_marks``."""
    rng = np.random.default_rng(0) if rng is None else rng
    h, w = rgb.shape[:2]
    # which edge: one the inference front end's centre square keeps (a long one), drawn along
    # the top of the turned picture
    turns = int(rng.choice([0, 1, 2, 3] if h == w else [0, 2] if w > h else [1, 3]))
    out = np.ascontiguousarray(np.rot90(rgb, turns))
    h, w = out.shape[:2]
    side = min(h, w)
    band = max(3, round(rng.uniform(0.08, 0.14) * side))
    if rng.random() < 0.5:
        strip = np.zeros((h, w), np.float32)
        strip[:band] = 1.0
        out = _blend(out, strip, (rng.uniform(200, 250),) * 3, rng.uniform(0.7, 0.95))
    ticks = np.zeros((h, w), np.float32)
    step = max(2.0, rng.uniform(0.03, 0.06) * side)
    thick = max(1, round(side / 150))
    for i, x in enumerate(np.arange(rng.uniform(0, step), w, step)):
        length = band if i % 5 == 0 else band // 2
        cv2.line(ticks, (round(x), 0), (round(x), length), 1.0, thick)
    out = _blend(out, ticks, (rng.uniform(0, 40),) * 3, 0.9)
    return np.ascontiguousarray(np.rot90(out, -turns))


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "warm_light": warm_light,
    "cool_light": cool_light,
    "darker": darker,
    "brighter": brighter,
    "low_contrast": low_contrast,
    "phone_jpeg": phone_jpeg,
    "dermoscope_frame": dermoscope_frame,
    "zoom_in": zoom_in,
    "zoom_out": zoom_out,
    "ink_marks": ink_marks,
    "ruler": ruler,
}


def mean_lab(rgb: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour (L in 0-100, a and b in about -128..127) of an RGB image."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab.reshape(-1, 3).mean(axis=0)


def look_distance(image_lab: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of per-image mean Lab colours (N, 3) from a reference set's
    distribution (M, 3): how unusual each image's overall colour and brightness is."""
    mu = reference_lab.mean(axis=0)
    cov = np.cov(reference_lab, rowvar=False) + 1e-6 * np.eye(3)
    d = image_lab - mu
    return np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))
