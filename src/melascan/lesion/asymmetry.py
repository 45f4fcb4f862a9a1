"""A of ABCD: asymmetry about the lesion's two principal axes (Stolz's 0-2 count).

Stolz's rule: bisect the lesion by two perpendicular axes and count the axes about
which the lesion is asymmetric in contour, colours or structures. We use the principal
axes of the mask (the eigenvectors of its second moments) and, for each axis:

* shape asymmetry: fold the mask about the axis; ``1 - overlap / area`` is the share
  of the lesion not covered by its mirror image (0 = mirror-symmetric, up to 1);
* colour asymmetry: fold the (slightly blurred) CIELAB image too and average the
  Delta E 76 (CIELAB distance) between each lesion point and its mirror image; uneven
  colours or structures on the two sides raise it.

An axis counts as asymmetric when either exceeds its threshold in ``LesionConfig``
(``asym_shape_threshold``, ``asym_color_threshold_de``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig


@dataclass(frozen=True)
class PrincipalAxes:
    """Centroid ``(cx, cy)`` in px, ``angle_deg`` of the major axis (from the x axis,
    y pointing down, as in images), and the axes' full lengths (4 standard deviations
    of the mask along each axis, which is the diameter for a disc) in px."""

    cx: float
    cy: float
    angle_deg: float
    major_length_px: float
    minor_length_px: float


@dataclass(frozen=True)
class Asymmetry:
    """Per-axis measurements and the resulting 0-2 score."""

    score: int
    shape_major: float
    shape_minor: float
    color_major_de: float
    color_minor_de: float
    asymmetric_major: bool
    asymmetric_minor: bool
    axes: PrincipalAxes


def principal_axes(mask: np.ndarray) -> PrincipalAxes:
    """Centroid, orientation and extent of a binary mask from its image moments."""
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    if m["m00"] == 0:
        raise ValueError("empty mask")
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    mu20, mu02, mu11 = m["mu20"] / m["m00"], m["mu02"] / m["m00"], m["mu11"] / m["m00"]
    angle = 0.5 * math.atan2(2 * mu11, mu20 - mu02)
    common = math.sqrt(max(((mu20 - mu02) / 2) ** 2 + mu11**2, 0.0))
    var_major = (mu20 + mu02) / 2 + common
    var_minor = max((mu20 + mu02) / 2 - common, 0.0)
    return PrincipalAxes(cx, cy, math.degrees(angle), 4 * math.sqrt(var_major), 4 * math.sqrt(var_minor))


def canvas_side(mask: np.ndarray, axes: PrincipalAxes) -> int:
    """Odd canvas side that holds the lesion in any rotation about its centroid."""
    ys, xs = np.nonzero(mask)
    reach = float(np.sqrt(((xs - axes.cx) ** 2 + (ys - axes.cy) ** 2).max()))
    return 2 * int(math.ceil(reach)) + 3


def align_to_axes(image: np.ndarray, axes: PrincipalAxes, side: int, interpolation: int) -> np.ndarray:
    """Rotate/translate ``image`` onto an odd ``side`` x ``side`` canvas so the major
    axis runs along the centre row and the minor axis along the centre column
    (flipping the canvas then folds the lesion about its axes)."""
    c = side // 2
    rot = cv2.getRotationMatrix2D((axes.cx, axes.cy), axes.angle_deg, 1.0)
    rot[0, 2] += c - axes.cx
    rot[1, 2] += c - axes.cy
    return cv2.warpAffine(image, rot, (side, side), flags=interpolation, borderValue=0)


def fold_asymmetry(aligned_mask: np.ndarray) -> tuple[float, float]:
    """``(about_major, about_minor)``: share of the lesion not covered by its mirror image."""
    area = float(aligned_mask.sum())
    about_major = 1.0 - float((aligned_mask & aligned_mask[::-1, :]).sum()) / area
    about_minor = 1.0 - float((aligned_mask & aligned_mask[:, ::-1]).sum()) / area
    return about_major, about_minor


def mirrored_color_difference(aligned_mask: np.ndarray, aligned_lab: np.ndarray) -> tuple[float, float]:
    """``(about_major, about_minor)``: mean Delta E 76 between each lesion point and its
    mirror image across the axis, over the part of the lesion that overlaps its mirror.
    It grows when colours or structures are distributed unevenly on the two sides."""

    def difference(flip) -> float:
        overlap = aligned_mask & flip(aligned_mask)
        if not overlap.any():
            return 0.0
        return float(np.linalg.norm(aligned_lab[overlap] - flip(aligned_lab)[overlap], axis=1).mean())

    return difference(lambda x: x[::-1]), difference(lambda x: x[:, ::-1])


def asymmetry(
    mask: np.ndarray, lab: np.ndarray, config: LesionConfig = DEFAULT_CONFIG
) -> Asymmetry:
    """Stolz's A (0-2) with its per-axis shape and colour measurements.

    ``mask``: HxW bool lesion mask; ``lab``: HxWx3 float32 CIELAB image of the same size.
    """
    axes = principal_axes(mask)
    side = canvas_side(mask, axes)
    aligned = align_to_axes(mask.astype(np.uint8), axes, side, cv2.INTER_NEAREST) > 0
    blur = config.asym_color_blur_frac * min(mask.shape)  # compare colours, not fine texture
    aligned_lab = align_to_axes(cv2.GaussianBlur(lab, (0, 0), blur), axes, side, cv2.INTER_LINEAR)
    shape_major, shape_minor = fold_asymmetry(aligned)
    color_major, color_minor = mirrored_color_difference(aligned, aligned_lab)
    asym_major = shape_major > config.asym_shape_threshold or color_major > config.asym_color_threshold_de
    asym_minor = shape_minor > config.asym_shape_threshold or color_minor > config.asym_color_threshold_de
    return Asymmetry(
        score=int(asym_major) + int(asym_minor),
        shape_major=round(shape_major, 4),
        shape_minor=round(shape_minor, 4),
        color_major_de=round(color_major, 2),
        color_minor_de=round(color_minor, 2),
        asymmetric_major=bool(asym_major),
        asymmetric_minor=bool(asym_minor),
        axes=axes,
    )
