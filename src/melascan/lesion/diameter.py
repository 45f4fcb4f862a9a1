"""D of ABCD: the lesion's greatest diameter (maximum Feret diameter).

The greatest distance between two points of the lesion, measured between the centres
of the outermost pixels on the convex hull plus one pixel (each pixel has a width),
so a disc drawn with radius r measures 2r + 1. In millimetres when the caller knows
the scale (``mm_per_px``); the clinical ABCD rule flags lesions wider than 6 mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.distance import pdist

#: The ABCD rule's diameter limit.
DIAMETER_LIMIT_MM = 6.0


@dataclass(frozen=True)
class Diameter:
    diameter_px: float
    diameter_mm: float | None
    exceeds_6mm: bool | None


def max_feret_px(contour: np.ndarray) -> float:
    """Maximum Feret diameter in px of an (N, 2) (x, y) outline (0 for no points)."""
    if len(contour) == 0:
        return 0.0
    hull = cv2.convexHull(contour.reshape(-1, 1, 2).astype(np.int32)).reshape(-1, 2)
    if len(hull) < 2:
        return 1.0
    return float(pdist(hull.astype(np.float64)).max()) + 1.0


def diameter(contour: np.ndarray, mm_per_px: float | None = None) -> Diameter:
    """Max Feret diameter in px, and in mm with ``exceeds_6mm`` when ``mm_per_px`` is given."""
    px = max_feret_px(contour)
    if mm_per_px is None:
        return Diameter(round(px, 2), None, None)
    mm = px * float(mm_per_px)
    return Diameter(round(px, 2), round(mm, 3), bool(mm > DIAMETER_LIMIT_MM))
