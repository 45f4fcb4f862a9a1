"""Image pre-processing shared by training and inference (numpy + OpenCV, no torch).

Training caches ``prepare_pixels`` output and augments it; inference applies
``prepare_pixels`` then ``normalize`` (and, when a model card asks for test-time
augmentation, averages the logits over ``tta_views``). Keeping both here is what
guarantees that the served model sees exactly what it was trained on.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

#: ImageNet statistics, used only when no measured mean/std is given.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def center_square_box(height_px: int, width_px: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the largest centred square of an image this size."""
    side = min(height_px, width_px)
    return (height_px - side) // 2, (width_px - side) // 2, side


def center_square(rgb: np.ndarray) -> np.ndarray:
    """Crop the largest centred square (dermoscopy lesions are centred)."""
    top, left, side = center_square_box(*rgb.shape[:2])
    return rgb[top : top + side, left : left + side]


def lesion_outside_crop_fraction(mask: np.ndarray) -> float:
    """Share of a lesion mask (HxW bool) that ``center_square`` cuts off: what the network never
    sees of the lesion (0 for a square image; 0 without a lesion)."""
    area = int(np.count_nonzero(mask))
    if area == 0:
        return 0.0
    top, left, side = center_square_box(*mask.shape[:2])
    return 1.0 - int(np.count_nonzero(mask[top : top + side, left : left + side])) / area


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


#: How many test-time views ``tta_views`` can give: each count is a group of symmetries of the square.
TTA_VIEW_COUNTS = (1, 2, 4, 8)


def tta_view_count(tta: bool | int | None) -> int:
    """The number of test-time views asked for: ``False``/``None``/0 -> 1 (none), ``True`` -> 8
    (all symmetries of the square), or a count in ``TTA_VIEW_COUNTS``."""
    if tta is None or tta is False:
        return 1
    if tta is True:
        return 8
    if int(tta) == 0:
        return 1
    if int(tta) not in TTA_VIEW_COUNTS:
        raise ValueError(f"test-time views must be one of {TTA_VIEW_COUNTS}, got {tta!r}")
    return int(tta)


def tta_views(batch: np.ndarray, n: int = 8) -> list[np.ndarray]:
    """The first ``n`` symmetries of the square of an ``N x C x H x W`` batch, in the order
    identity, horizontal flip, rotation by 180 degrees, vertical flip, then the same four turned
    by 90 degrees; the first 1, 2, 4 or 8 form a group, so their mean has no preferred
    orientation. Dermoscopy has none, so every view is a valid image."""
    n = tta_view_count(n)
    views = []
    for quarter_turns in (0, 2, 1, 3)[: max(1, n // 2)]:
        turned = np.rot90(batch, quarter_turns, axes=(-2, -1))
        views += [turned, turned[..., ::-1]]
    return [np.ascontiguousarray(v) for v in views[:n]]
