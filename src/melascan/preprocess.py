"""Image pre-processing shared by training and inference (numpy + OpenCV, no torch).

Training caches ``prepare_pixels`` output and augments it; inference applies
``prepare_pixels`` then ``normalize``. Keeping both here is what guarantees that
the served model sees exactly what it was trained on.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

#: ImageNet statistics, used only when no measured mean/std is given.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def center_square(rgb: np.ndarray) -> np.ndarray:
    """Crop the largest centred square (dermoscopy lesions are centred)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def resize_square(rgb: np.ndarray, size_px: int) -> np.ndarray:
    """Centre-crop to a square, then resize to ``size_px`` (area filter when shrinking)."""
    square = center_square(rgb)
    if square.shape[0] == size_px:
        return np.ascontiguousarray(square)
    interp = cv2.INTER_AREA if square.shape[0] > size_px else cv2.INTER_LINEAR
    return cv2.resize(square, (size_px, size_px), interpolation=interp)


def shades_of_gray(rgb: np.ndarray, power: float = 6.0) -> np.ndarray:
    """Shades-of-Gray colour constancy (Finlayson & Trezzi 2004), ``uint8`` in and out.

    Estimates the illuminant as the Minkowski ``power``-norm of each channel and
    rescales channels so the illuminant becomes neutral gray.
    """
    img = rgb.astype(np.float32)
    illuminant = np.power(np.mean(np.power(img, power), axis=(0, 1)), 1.0 / power)
    illuminant = illuminant / max(float(np.linalg.norm(illuminant)), 1e-6)
    gains = 1.0 / (illuminant * np.sqrt(3.0) + 1e-6)
    return np.clip(img * gains, 0, 255).astype(np.uint8)


def prepare_pixels(rgb: np.ndarray, size_px: int, color_constancy: str | None = None) -> np.ndarray:
    """The deterministic part of pre-processing: ``uint8`` RGB -> ``uint8`` ``size_px`` square.

    ``color_constancy`` is ``None`` or ``"shades_of_gray"``.
    """
    out = resize_square(rgb, size_px)
    if color_constancy == "shades_of_gray":
        out = shades_of_gray(out)
    elif color_constancy not in (None, "", "none"):
        raise ValueError(f"unknown color_constancy {color_constancy!r}")
    return out


def normalize(
    rgb: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """``uint8`` HxWx3 (or NxHxWx3) -> ``float32`` CHW (or NCHW), ``(x/255 - mean) / std``."""
    x = rgb.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))
