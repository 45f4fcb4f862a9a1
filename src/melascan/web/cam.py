"""The class activation map as people see it: the heatmap overlay (a pure function; the CAM
itself comes from the Classifier)."""

from __future__ import annotations

import cv2
import numpy as np

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
