"""Explanatory overlays for the web app, drawn on the input image (RGB in, RGB out).

* ``contour``: the lesion outline.
* ``axes``: the outline plus the two principal axes through the centroid; an axis
  about which the lesion is asymmetric is drawn in ``AXIS_COLORS["asymmetric"]``,
  otherwise in ``AXIS_COLORS["symmetric"]``.
* ``colors``: each lesion pixel painted with its dermoscopic colour
  (``melascan.lesion.colors.COLOR_PALETTE``, for the legend), the skin dimmed.
* ``structures``: where each differential structure was found, painted in
  ``STRUCTURE_PALETTE`` over the dimmed image (only the structures decided present).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from melascan.lesion.analysis import LesionAnalysis
from melascan.lesion.colors import COLOR_NAMES, COLOR_PALETTE
from melascan.lesion.structures import STRUCTURE_NAMES

CONTOUR_COLOR = (0, 255, 120)
AXIS_COLORS = {"asymmetric": (255, 80, 0), "symmetric": (0, 200, 255)}
#: RGB colour of each differential structure in the ``structures`` overlay (the web app's legend).
STRUCTURE_PALETTE: dict[str, tuple[int, int, int]] = {
    "pigment_network": (255, 215, 0),
    "dots_globules": (0, 230, 255),
    "streaks": (255, 60, 200),
    "regression": (255, 255, 255),
    "blue_whitish_veil": (60, 110, 255),
}


def _thickness(shape: tuple[int, ...]) -> int:
    return max(1, round(min(shape[:2]) / 200))


def draw_contour(rgb: np.ndarray, mask: np.ndarray, color=CONTOUR_COLOR, thickness: int | None = None) -> np.ndarray:
    """A copy of ``rgb`` with the outline(s) of ``mask`` drawn on it."""
    out = np.ascontiguousarray(rgb.copy())
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, color, thickness or _thickness(rgb.shape), lineType=cv2.LINE_AA)
    return out


def axis_endpoints(mask: np.ndarray, cx: float, cy: float, angle_deg: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where the line through ``(cx, cy)`` at ``angle_deg`` enters and leaves the mask
    (the extreme projections of the mask's pixels on that direction)."""
    ys, xs = np.nonzero(mask)
    ux, uy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    t = (xs - cx) * ux + (ys - cy) * uy
    lo, hi = float(t.min()), float(t.max())
    return (round(cx + lo * ux), round(cy + lo * uy)), (round(cx + hi * ux), round(cy + hi * uy))


def draw_axes(rgb: np.ndarray, analysis: LesionAnalysis) -> np.ndarray:
    out = draw_contour(rgb, analysis.mask, thickness=max(1, _thickness(rgb.shape) // 2))
    axes, asym = analysis.axes, analysis.asymmetry
    if axes is None or asym is None:
        return out
    thick = _thickness(rgb.shape) + 1
    for angle, is_asym in ((axes.angle_deg, asym.asymmetric_major), (axes.angle_deg + 90.0, asym.asymmetric_minor)):
        p0, p1 = axis_endpoints(analysis.mask, axes.cx, axes.cy, angle)
        color = AXIS_COLORS["asymmetric" if is_asym else "symmetric"]
        cv2.line(out, p0, p1, color, thick, lineType=cv2.LINE_AA)
    cv2.circle(out, (round(axes.cx), round(axes.cy)), thick + 1, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    return out


def draw_colors(rgb: np.ndarray, analysis: LesionAnalysis, alpha: float = 0.7) -> np.ndarray:
    """The colour-region map: lesion pixels in their palette colour, skin dimmed."""
    out = (rgb.astype(np.float32) * 0.45).astype(np.uint8)  # dim everything
    if analysis.color_map is None or not analysis.found:
        return out
    h, w = rgb.shape[:2]
    index = cv2.resize(analysis.color_map, (w, h), interpolation=cv2.INTER_NEAREST)
    index[~analysis.mask] = 0
    palette = np.zeros((len(COLOR_NAMES) + 1, 3), np.float32)
    for i, name in enumerate(COLOR_NAMES):
        palette[i + 1] = COLOR_PALETTE[name]
    painted = index > 0
    out[analysis.mask] = rgb[analysis.mask]  # unnamed lesion pixels keep their colour
    out[painted] = (alpha * palette[index[painted]] + (1 - alpha) * rgb[painted]).astype(np.uint8)
    return draw_contour(out, analysis.mask, color=(255, 255, 255), thickness=max(1, _thickness(rgb.shape) // 2))


def draw_structures(rgb: np.ndarray, analysis: LesionAnalysis, alpha: float = 0.8) -> np.ndarray:
    """Where each differential structure decided present was found (``STRUCTURE_PALETTE``)."""
    out = (rgb.astype(np.float32) * 0.55).astype(np.uint8)
    found = analysis.structures
    if found is None or not analysis.found:
        return out
    h, w = rgb.shape[:2]
    out[analysis.mask] = rgb[analysis.mask]
    for name in STRUCTURE_NAMES:  # later ones are drawn over earlier ones
        where = found.maps.get(name)
        if where is None or name not in found.present() or not where.any():
            continue
        big = cv2.resize(where.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        color = np.asarray(STRUCTURE_PALETTE[name], np.float32)
        out[big] = (alpha * color + (1 - alpha) * rgb[big]).astype(np.uint8)
    return draw_contour(out, analysis.mask, color=(255, 255, 255), thickness=max(1, _thickness(rgb.shape) // 2))


def make_overlays(rgb: np.ndarray, analysis: LesionAnalysis) -> dict[str, np.ndarray]:
    """``{"contour", "axes", "colors", "structures"}`` RGB images, each HxWx3 uint8 like the input."""
    if rgb.shape[:2] != analysis.mask.shape:
        raise ValueError(f"image {rgb.shape[:2]} and analysis mask {analysis.mask.shape} differ in size")
    return {
        "contour": draw_contour(rgb, analysis.mask),
        "axes": draw_axes(rgb, analysis),
        "colors": draw_colors(rgb, analysis),
        "structures": draw_structures(rgb, analysis),
    }
