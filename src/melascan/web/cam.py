"""The class activation map as people see it: the heatmap overlay, and how much of the heat
lies inside the outlined lesion (pure functions; the CAM itself comes from the Classifier)."""

from __future__ import annotations

import cv2
import numpy as np

#: Below this share of the CAM's mass inside the lesion mask, the page says the model looked
#: mostly outside the outlined spot.
MOSTLY_OUTSIDE_BELOW = 0.5


def heatmap_overlay(rgb: np.ndarray, cam: np.ndarray, max_alpha: float = 0.6) -> np.ndarray:
    """Blend a [0, 1] CAM (any size) onto ``rgb`` with the JET colour map.

    The opacity follows the map (``max_alpha * cam``): where the model found no
    evidence the picture shows through unchanged, so the hot spots stand out.
    """
    h, w = rgb.shape[:2]
    cam = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0)
    if cam.shape != (h, w):
        cam = cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.uint8(cam * 255), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (max_alpha * cam)[:, :, None]
    return np.clip(rgb.astype(np.float32) * (1 - alpha) + colored * alpha, 0, 255).astype(np.uint8)


def cam_inside_fraction(cam: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of the CAM's mass (sum of its values) that lies inside the boolean lesion ``mask``.

    The CAM is resized to the mask's size if needed. ``None`` when there is nothing to compare:
    an empty mask (no lesion found) or a map with no heat at all.
    """
    mask = np.asarray(mask, dtype=bool)
    cam = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, None)
    if cam.shape != mask.shape:
        cam = cv2.resize(cam, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    total = float(cam.sum())
    if not mask.any() or total <= 0:
        return None
    return float(cam[mask].sum()) / total


def mostly_outside(fraction: float | None) -> bool:
    """Whether a ``cam_inside_fraction`` calls for the "looked mostly outside the spot" note."""
    return fraction is not None and fraction < MOSTLY_OUTSIDE_BELOW
