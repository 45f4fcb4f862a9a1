"""Class activation maps (Zhou et al. 2016) in numpy, for a pooled linear head.

With global average pooling followed by a linear layer, the malignant-minus-benign
logit difference is the spatial mean of ``sum_c (w1[c] - w0[c]) * F[c, y, x]``: that map
shows where the evidence for melanoma lies. Pure functions, arrays in and out.
"""

from __future__ import annotations

import cv2
import numpy as np


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


def crop_box(height_px: int, width_px: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the centred square that ``preprocess.center_square`` keeps."""
    side = min(height_px, width_px)
    return (height_px - side) // 2, (width_px - side) // 2, side


def cam_to_image(cam: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """Place a square-crop CAM back on the original image: (H, W) float32 in [0, 1].

    The model saw only the centred square; the map is upsampled (bilinear) onto that
    square and the cropped-away margins are 0.
    """
    top, left, side = crop_box(height_px, width_px)
    square = cv2.resize(cam.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height_px, width_px), np.float32)
    out[top : top + side, left : left + side] = np.clip(square, 0.0, 1.0)
    return out
