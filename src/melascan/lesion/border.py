"""B of ABCD: abrupt pigment cut-off per octant (Stolz's 0-8), compactness, fractal dimension.

* Octants: the outline is divided into 8 sectors of 45 degrees around the centroid,
  starting at the major axis. In each, we measure how steeply the lightness (CIELAB
  L*) changes across the border: the largest L* gradient within a band of
  ``border_band_frac`` x the lesion's equivalent radius around each outline point,
  median over the octant's outline points, expressed in L* units per 1 % of the
  lesion's diameter (so the number does not depend on image resolution). An octant
  with a slope above ``border_abrupt_slope`` has an abrupt cut-off; a faint, fading
  edge does not. B = number of abrupt octants.
* Compactness index ``P^2 / (4 pi A)`` of the sub-pixel outline: 1 for a disc,
  larger for elongated or ragged borders.
* Fractal (box-counting) dimension of the outline: ~1 for a smooth curve, up to
  ~1.3-1.4 for very ragged borders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from skimage import measure

from melascan.lesion.asymmetry import PrincipalAxes
from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.preprocessing import disc


@dataclass(frozen=True)
class Border:
    """Stolz's B (0-8) with the per-octant slopes and two shape indices."""

    score: int
    octant_slopes: tuple[float, ...]  # L* per 1 % of diameter, from the major axis, 45 degrees each
    abrupt_octants: tuple[bool, ...]
    compactness: float
    fractal_dimension: float


def subpixel_outline(mask: np.ndarray) -> np.ndarray:
    """(N, 2) float (row, col) vertices of the mask's longest outline, traced at 0.5 of
    a lightly blurred mask (marching squares), so perimeters are not inflated by pixel
    staircases."""
    soft = cv2.GaussianBlur(np.pad(mask, 1).astype(np.float32), (0, 0), 0.7)
    contours = measure.find_contours(soft, 0.5)
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=len) - 1.0


def compactness_index(mask: np.ndarray) -> float:
    """``P^2 / (4 pi A)`` of the outline (1.0 for a disc); NaN for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return float("nan")
    outline = subpixel_outline(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    if len(outline) < 3:
        return float("nan")
    closed = np.vstack([outline, outline[:1]])
    perimeter = float(np.sum(np.hypot(*np.diff(closed, axis=0).T)))
    y, x = outline[:, 0], outline[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    return perimeter**2 / (4 * math.pi * area) if area > 0 else float("nan")


def fractal_dimension(mask: np.ndarray) -> float:
    """Box-counting dimension of the mask's 1-px outline.

    Counts the boxes of side ``s`` = 2, 4, 8 ... (up to a quarter of the lesion's
    bounding box) that contain outline pixels; the dimension is the slope of
    ``log N(s)`` against ``log(1/s)``. NaN when the lesion is too small (< 3 scales).
    """
    m8 = mask.astype(np.uint8)
    outline = (m8 - cv2.erode(m8, np.ones((3, 3), np.uint8))) > 0
    ys, xs = np.nonzero(outline)
    if ys.size == 0:
        return float("nan")
    crop = outline[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    extent = max(crop.shape)
    sizes = [s for s in (2, 4, 8, 16, 32, 64, 128) if s <= extent / 4]
    if len(sizes) < 3:
        return float("nan")
    counts = []
    for s in sizes:
        h, w = -(-crop.shape[0] // s) * s, -(-crop.shape[1] // s) * s
        padded = np.zeros((h, w), bool)
        padded[: crop.shape[0], : crop.shape[1]] = crop
        counts.append(padded.reshape(h // s, s, w // s, s).any(axis=(1, 3)).sum())
    slope = np.polyfit(np.log(1.0 / np.asarray(sizes, float)), np.log(np.asarray(counts, float)), 1)[0]
    return float(slope)


def octant_slopes(
    mask: np.ndarray,
    lightness: np.ndarray,
    contour: np.ndarray,
    axes: PrincipalAxes,
    diameter_px: float,
    config: LesionConfig = DEFAULT_CONFIG,
) -> np.ndarray:
    """Steepest L* change across the border per octant, in L* per 1 % of the diameter.

    ``lightness``: HxW float32 L* (0-100); ``contour``: (N, 2) int (x, y) outline points
    of ``mask``; ``axes``: the mask's principal axes (octant 0 starts at the major axis
    and the octants turn the way the image's angles do). Empty octants get 0.
    """
    radius_eq = math.sqrt(float(mask.sum()) / math.pi)
    band = max(1.0, config.border_band_frac * radius_eq)
    # work on the lesion's bounding box plus a margin for the band and the filters
    ys, xs = np.nonzero(mask)
    margin = int(math.ceil(band)) + 6
    top, left = max(0, ys.min() - margin), max(0, xs.min() - margin)
    crop = lightness[top : ys.max() + margin + 1, left : xs.max() + margin + 1]
    smooth = cv2.GaussianBlur(crop, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0  # L* per px
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    steepest = cv2.dilate(cv2.magnitude(gx, gy), disc(band))  # max gradient within the band
    x, y = contour[:, 0], contour[:, 1]
    values = steepest[y - top, x - left] * (diameter_px / 100.0)
    angle = np.degrees(np.arctan2(y - axes.cy, x - axes.cx)) - axes.angle_deg
    octant = (np.mod(angle, 360.0) // 45.0).astype(int) % 8
    slopes = np.zeros(8)
    for k in range(8):
        if (octant == k).any():
            slopes[k] = float(np.median(values[octant == k]))
    return slopes


def border(
    mask: np.ndarray,
    lightness: np.ndarray,
    contour: np.ndarray,
    axes: PrincipalAxes,
    diameter_px: float,
    config: LesionConfig = DEFAULT_CONFIG,
) -> Border:
    """Stolz's B (0-8) plus compactness and fractal dimension; see the module docstring."""
    slopes = octant_slopes(mask, lightness, contour, axes, diameter_px, config)
    abrupt = slopes > config.border_abrupt_slope
    return Border(
        score=int(abrupt.sum()),
        octant_slopes=tuple(round(float(s), 3) for s in slopes),
        abrupt_octants=tuple(bool(a) for a in abrupt),
        compactness=round(compactness_index(mask), 4),
        fractal_dimension=round(fractal_dimension(mask), 4),
    )
