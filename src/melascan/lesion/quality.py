"""Image quality checks: when one fires, the app says it cannot judge the image.

Codes (thresholds: the ``quality_*`` values of ``LesionConfig``; measured on the
working-size image of ``prepare_work``, shorter side ``LesionConfig.work_side_px`` =
192 px, inside the field of view):

``blurry``
    variance of the Laplacian of the gray image below ``quality_blur_min_laplacian_var``
    (the least sharp of 900 real dermoscopy images measured 6.1, a Gaussian blur of
    sigma 3 px brings a typical image below 1).
``too_dark``
    mean brightness (max of R, G, B; 0-255) below ``quality_dark_max_mean_brightness``,
    or less than ``fov_min_fraction`` (5 %) of the picture in the field of view.
``too_bright``
    mean brightness above ``quality_bright_min_mean_brightness``, or more than
    ``quality_bright_max_saturated_fraction`` of the pixels saturated (all channels
    >= ``quality_saturated_level``).
``no_lesion``
    the segmentation found no lesion (see ``melascan.lesion.segmentation``).
``not_dermoscopic``
    a deliberately conservative colour heuristic. Skin and lesions, even under the
    bluish light of some dermatoscopes, are never green, never neon-vivid and not
    colourless. Fires when more than ``quality_max_green_fraction`` of the pixels are
    green (a* < -12 with chroma > 10), more than ``quality_max_vivid_fraction`` are
    vivid (chroma C* > 70), or the mean chroma is below ``quality_min_mean_chroma``
    (a grayscale picture, a document). On 900 real dermoscopy images (PH2 + 800 from
    melanoma-10k) the largest values seen were 0.2 % green, 18 % vivid and a mean
    chroma of at least 3.5, so the thresholds leave a wide margin.

Calibration of the other thresholds on the same 900 images: Laplacian variance min
6.1 (0.5th percentile 10), mean brightness 69-250, saturated share at most 25 %.
"""

from __future__ import annotations

import cv2
import numpy as np

from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.preprocessing import WorkImage, brightness, prepare_work, rgb_to_lab
from melascan.lesion.segmentation import NO_LESION, Segmentation, segment

BLURRY = "blurry"
TOO_DARK = "too_dark"
TOO_BRIGHT = "too_bright"
NOT_DERMOSCOPIC = "not_dermoscopic"
#: every code ``assess_quality`` can return
QUALITY_CODES = (BLURRY, TOO_DARK, TOO_BRIGHT, NO_LESION, NOT_DERMOSCOPIC)


def laplacian_variance(gray: np.ndarray, region: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of ``gray`` over ``region`` (a sharpness measure)."""
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    inner = cv2.erode(region.astype(np.uint8), np.ones((7, 7), np.uint8))  # not the vignette edge
    if not inner.any():
        inner = None
    _, std = cv2.meanStdDev(lap, mask=inner)
    return float(std[0, 0]) ** 2


def looks_dermoscopic(lab: np.ndarray, region: np.ndarray, config: LesionConfig = DEFAULT_CONFIG) -> bool:
    """False when the colours inside ``region`` cannot be skin (see the module doc)."""
    sub = region[::2, ::2]
    a, b = lab[::2, ::2, 1][sub], lab[::2, ::2, 2][sub]
    if a.size == 0:
        return False
    chroma = np.hypot(a, b)
    green = float(((a < config.quality_green_max_a) & (chroma > config.quality_green_min_chroma)).mean())
    vivid = float((chroma > config.quality_vivid_min_chroma).mean())
    return (
        green <= config.quality_max_green_fraction
        and vivid <= config.quality_max_vivid_fraction
        and chroma.mean() >= config.quality_min_mean_chroma
    )


def _view(work: WorkImage, config: LesionConfig) -> np.ndarray:
    """The field of view the checks read; empty when (nearly) all of the picture is vignette."""
    return work.fov if work.fov.mean() >= config.fov_min_fraction else np.zeros_like(work.fov)


def colours_look_dermoscopic(work: WorkImage, config: LesionConfig = DEFAULT_CONFIG) -> bool:
    """The ``not_dermoscopic`` check of ``analyze_lesion`` alone (no segmentation): False when
    the hair-free colours in the field of view cannot be skin (grayscale, green or neon)."""
    region = _view(work, config)
    return not region.any() or looks_dermoscopic(work.lab, region, config)


def exposure_codes(work: WorkImage, config: LesionConfig = DEFAULT_CONFIG) -> list[str]:
    """``too_dark`` / ``too_bright`` of a ``prepare_work`` image under ``config``'s limits
    (``exposure_warning_config`` gives the web's warning limits)."""
    region = _view(work, config)
    if not region.any():
        return [TOO_DARK]
    codes = []
    region8 = region.astype(np.uint8)
    mean_v = float(cv2.mean(brightness(work.rgb), mask=region8)[0])
    if mean_v < config.quality_dark_max_mean_brightness:
        codes.append(TOO_DARK)
    darkest = cv2.min(cv2.min(work.rgb[:, :, 0], work.rgb[:, :, 1]), work.rgb[:, :, 2])
    saturated = float(cv2.mean((darkest >= config.quality_saturated_level).astype(np.uint8), mask=region8)[0])
    if mean_v > config.quality_bright_min_mean_brightness or saturated > config.quality_bright_max_saturated_fraction:
        codes.append(TOO_BRIGHT)
    return codes


def quality_codes(
    work: WorkImage,
    segmentation: Segmentation | None,
    config: LesionConfig = DEFAULT_CONFIG,
    lab: np.ndarray | None = None,
) -> list[str]:
    """The checks on a prepared image whose segmentation is known.

    Parameters
    ----------
    work : WorkImage
        From ``prepare_work``; the checks look at ``work.rgb`` (hair not removed)
        inside ``work.fov``.
    segmentation : Segmentation or None
        ``no_lesion`` is reported when it is ``None`` or found no lesion.
    config : LesionConfig, optional
        Uses the ``quality_*`` values and ``fov_min_fraction``.
    lab : (h, w, 3) float32 ndarray, optional
        The CIELAB image the colour check (``not_dermoscopic``) reads. Default:
        ``rgb_to_lab(work.rgb)``; ``analyze_lesion`` passes ``work.lab`` (hair removed).

    Returns
    -------
    codes : list of str
        A subset of ``QUALITY_CODES`` in that order; empty when the image is fine.
    """
    work_rgb = work.rgb
    codes = exposure_codes(work, config)
    region = _view(work, config)
    if region.any():
        gray = cv2.cvtColor(work_rgb, cv2.COLOR_RGB2GRAY)
        if laplacian_variance(gray, region) < config.quality_blur_min_laplacian_var:
            codes.append(BLURRY)
        lab = rgb_to_lab(work_rgb) if lab is None else lab
        if not looks_dermoscopic(lab, region, config):
            codes.append(NOT_DERMOSCOPIC)
    if segmentation is None or not segmentation.found:
        codes.append(NO_LESION)
    return codes


def assess_quality(
    rgb: np.ndarray,
    segmentation: Segmentation | None = None,
    config: LesionConfig = DEFAULT_CONFIG,
) -> list[str]:
    """Warning codes for an ``HxWx3`` ``uint8`` RGB image (empty list = fine).

    Runs the front end (``prepare_work``) and, unless a ``segmentation`` already
    computed for this image is passed, ``segment``; then ``quality_codes``.
    """
    work = prepare_work(rgb, config)
    if segmentation is None:
        segmentation = segment(work, config)
    return quality_codes(work, segmentation, config)
