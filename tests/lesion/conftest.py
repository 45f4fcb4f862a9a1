"""Synthetic dermoscopy-like images with known answers for the lesion tests.

Shapes are drawn at 4x and shrunk with area averaging, so edges are anti-aliased and
geometry (areas, diameters) is accurate to a fraction of a pixel. Skin gets mild
noise and a light blur so it looks like a photograph rather than a flat fill.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

SKIN = (222, 176, 152)
DARK_BROWN = (105, 62, 38)
LIGHT_BROWN = (190, 130, 92)
BLACK = (35, 30, 30)
HAIR = (45, 32, 25)
SS = 4  # supersampling factor


def _shrink(big: np.ndarray) -> np.ndarray:
    h, w = big.shape[:2]
    return cv2.resize(big, (w // SS, h // SS), interpolation=cv2.INTER_AREA)


def canvas(size: int = 300, color=SKIN) -> np.ndarray:
    """A supersampled skin-coloured canvas (draw on it, then ``finish``)."""
    return np.full((size * SS, size * SS, 3), color, np.uint8)


def finish(big: np.ndarray, seed: int = 0, noise: float = 3.0) -> np.ndarray:
    img = _shrink(big).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def disc_image(size=300, radius=60, center=None, color=DARK_BROWN, seed=0) -> np.ndarray:
    big = canvas(size)
    c = center or (size // 2, size // 2)
    cv2.circle(big, (c[0] * SS + SS // 2, c[1] * SS + SS // 2), radius * SS, color, -1, lineType=cv2.LINE_AA)
    return finish(big, seed)


def disc_mask(size=300, radius=60, center=None) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cx, cy = center or (size // 2, size // 2)
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def ellipse_image(size=300, axes=(90, 45), angle=30.0, color=DARK_BROWN, seed=0) -> np.ndarray:
    big = canvas(size)
    c = (size * SS // 2, size * SS // 2)
    cv2.ellipse(big, c, (axes[0] * SS, axes[1] * SS), angle, 0, 360, color, -1, lineType=cv2.LINE_AA)
    return finish(big, seed)


def half_disc_image(size=300, radius=80, seed=0) -> np.ndarray:
    """A half-moon: the upper half of a disc (flat side down), centred in the image."""
    big = canvas(size)
    c = (size * SS // 2, size * SS // 2 + radius * SS // 3)
    cv2.ellipse(big, c, (radius * SS, radius * SS), 0, 180, 360, DARK_BROWN, -1, lineType=cv2.LINE_AA)
    return finish(big, seed)


def crescent_image(size=300, radius=80, seed=0) -> np.ndarray:
    """A crescent moon: a disc with an offset disc of skin cut out of it."""
    big = canvas(size)
    c = size * SS // 2
    cv2.circle(big, (c, c), radius * SS, DARK_BROWN, -1, lineType=cv2.LINE_AA)
    cv2.circle(big, (c + radius * SS // 2, c), int(radius * SS * 0.8), SKIN, -1, lineType=cv2.LINE_AA)
    return finish(big, seed)


def two_color_image(size=300, radius=70, left=LIGHT_BROWN, right=DARK_BROWN, seed=0) -> np.ndarray:
    big = canvas(size)
    c = size * SS // 2
    cv2.ellipse(big, (c, c), (radius * SS, radius * SS), 0, 90, 270, left, -1, lineType=cv2.LINE_AA)
    cv2.ellipse(big, (c, c), (radius * SS, radius * SS), 0, -90, 90, right, -1, lineType=cv2.LINE_AA)
    return finish(big, seed)


def add_hair(rgb: np.ndarray, count: int = 8, seed: int = 1, thickness: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Dark curved-ish hair lines across the image: ``(image, hair_mask)``."""
    rng = np.random.default_rng(seed)
    out, mask = rgb.copy(), np.zeros(rgb.shape[:2], np.uint8)
    h, w = rgb.shape[:2]
    for _ in range(count):
        p0 = (int(rng.integers(0, w)), 0)
        p1 = (int(rng.integers(0, w)), h - 1)
        mid = ((p0[0] + p1[0]) // 2 + int(rng.integers(-40, 40)), h // 2)
        pts = np.array([p0, mid, p1], np.int32)
        cv2.polylines(out, [pts], False, HAIR, thickness, lineType=cv2.LINE_AA)
        cv2.polylines(mask, [pts], False, 1, thickness)
    return out, mask > 0


def vignette(rgb: np.ndarray, radius_frac: float = 0.56) -> tuple[np.ndarray, np.ndarray]:
    """Black dermatoscope corners with a shaded rim: ``(image, inside_view_mask)``."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) / (radius_frac * min(h, w))
    # full light inside 85 % of the radius, fading to near black at the edge of the view
    gain = np.clip(1.0 - (r - 0.85) / 0.15, 0.03, 1.0)
    out = np.clip(rgb.astype(np.float32) * gain[:, :, None], 0, 255).astype(np.uint8)
    return out, r < 1.0


def _p(v: float) -> int:
    """A coordinate on the supersampled canvas."""
    return int(round(v * SS))


def network_image(size=300, radius=80, spacing=12, line=2, seed=0) -> np.ndarray:
    """A light-brown disc with a drawn reticular grid of dark-brown lines (pigment network)."""
    big = canvas(size)
    c = size / 2
    cv2.circle(big, (_p(c), _p(c)), _p(radius), LIGHT_BROWN, -1, lineType=cv2.LINE_AA)
    inside = np.zeros(big.shape[:2], np.uint8)
    cv2.circle(inside, (_p(c), _p(c)), _p(radius), 1, -1)
    lines = np.zeros_like(inside)
    for x in np.arange(c - radius, c + radius + 1, spacing):
        cv2.line(lines, (_p(x), 0), (_p(x), big.shape[0]), 1, _p(line))
        cv2.line(lines, (0, _p(x)), (big.shape[1], _p(x)), 1, _p(line))
    big[(lines > 0) & (inside > 0)] = DARK_BROWN
    return finish(big, seed)


def dots_image(size=300, radius=80, count=40, dot_radius=2.5, seed=1) -> np.ndarray:
    """A light-brown disc with dark dots scattered over it (dots/globules)."""
    big = canvas(size)
    c = size / 2
    cv2.circle(big, (_p(c), _p(c)), _p(radius), LIGHT_BROWN, -1, lineType=cv2.LINE_AA)
    rng = np.random.default_rng(seed)
    for _ in range(count):
        r, t = rng.uniform(0, radius - 15), rng.uniform(0, 2 * np.pi)
        cv2.circle(big, (_p(c + r * np.cos(t)), _p(c + r * np.sin(t))), _p(dot_radius), (60, 35, 25), -1)
    return finish(big, seed)


def streaks_image(size=300, radius=65, count=28, seed=0) -> np.ndarray:
    """A dark-brown disc with dark radial lines crossing its border (streaks)."""
    big = canvas(size)
    c = size / 2
    cv2.circle(big, (_p(c), _p(c)), _p(radius), DARK_BROWN, -1, lineType=cv2.LINE_AA)
    for k in range(count):
        t = 2 * np.pi * k / count
        start = (_p(c + (radius - 10) * np.cos(t)), _p(c + (radius - 10) * np.sin(t)))
        end = (_p(c + (radius + 25) * np.cos(t)), _p(c + (radius + 25) * np.sin(t)))
        cv2.line(big, start, end, DARK_BROWN, _p(2))
    return finish(big, seed)


VEIL = (120, 135, 160)  # grayish blue, CIELAB about L* 55, b* -15


def veil_image(size=300, radius=80, blotch=40, seed=0) -> np.ndarray:
    """A light-brown disc with a confluent blue-whitish blotch in it (blue-whitish veil)."""
    big = canvas(size)
    c = size / 2
    cv2.circle(big, (_p(c), _p(c)), _p(radius), LIGHT_BROWN, -1, lineType=cv2.LINE_AA)
    cv2.circle(big, (_p(c + 10), _p(c)), _p(blotch), VEIL, -1, lineType=cv2.LINE_AA)
    return finish(big, seed)


def uniform_skin(size=300, seed=0) -> np.ndarray:
    return finish(canvas(size), seed)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture
def synth() -> SimpleNamespace:
    """The image builders above, for tests (``synth.disc_image(...)``)."""
    return SimpleNamespace(
        SKIN=SKIN,
        DARK_BROWN=DARK_BROWN,
        LIGHT_BROWN=LIGHT_BROWN,
        BLACK=BLACK,
        canvas=canvas,
        finish=finish,
        disc_image=disc_image,
        disc_mask=disc_mask,
        ellipse_image=ellipse_image,
        half_disc_image=half_disc_image,
        crescent_image=crescent_image,
        two_color_image=two_color_image,
        network_image=network_image,
        dots_image=dots_image,
        streaks_image=streaks_image,
        veil_image=veil_image,
        add_hair=add_hair,
        vignette=vignette,
        uniform_skin=uniform_skin,
        dice=dice,
    )
