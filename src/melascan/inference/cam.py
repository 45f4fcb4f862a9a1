"""Class activation maps (Zhou et al. 2016) in numpy, for a pooled linear head.

With global average pooling followed by a linear layer, the malignant-minus-benign
logit difference is the spatial mean of ``sum_c (w1[c] - w0[c]) * F[c, y, x]``: that map
shows where the evidence for melanoma lies; ``heatmap_overlay`` draws it on the image and
``cam_inside_fraction`` says how much of it lies inside a lesion mask. Pure functions,
arrays in and out.
"""

from __future__ import annotations

import cv2
import numpy as np

from melascan.preprocess import center_square_box


def class_activation_map(features: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``features`` (C, h, w) and head ``weight`` (2, C) -> (h, w) float32 map in [0, 1].

    The map is ``ReLU(sum_c (weight[1, c] - weight[0, c]) * features[c])`` divided by its
    maximum; an all-zero map (no malignant evidence anywhere) stays zero.
    """
    direction = (weight[1] - weight[0]).astype(np.float32)
    cam = np.tensordot(direction, features.astype(np.float32), axes=(0, 0))
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def cam_to_image(cam: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """Place a square-crop CAM back on the original image: (H, W) float32 in [0, 1].

    The model saw only the centred square; the map is upsampled (bilinear) onto that
    square and the cropped-away margins are 0.
    """
    top, left, side = center_square_box(height_px, width_px)
    square = cv2.resize(cam.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height_px, width_px), np.float32)
    out[top : top + side, left : left + side] = np.clip(square, 0.0, 1.0)
    return out


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
