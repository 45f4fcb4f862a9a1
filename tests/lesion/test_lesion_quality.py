"""Image quality checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from melascan.lesion import DEFAULT_CONFIG, QUALITY_CODES, assess_quality


def test_sharp_lesion_image_passes(synth):
    assert assess_quality(synth.disc_image()) == []


def test_blurred_image_is_blurry(synth):
    blurred = cv2.GaussianBlur(synth.disc_image(), (0, 0), 4)
    assert "blurry" in assess_quality(blurred)


def test_black_image_is_too_dark_and_has_no_lesion():
    codes = assess_quality(np.zeros((300, 300, 3), np.uint8))
    assert "too_dark" in codes and "no_lesion" in codes


def test_dim_image_is_too_dark(synth):
    dim = (synth.disc_image().astype(np.float32) * 0.15).astype(np.uint8)
    assert "too_dark" in assess_quality(dim)


def test_white_image_is_too_bright():
    assert "too_bright" in assess_quality(np.full((300, 300, 3), 255, np.uint8))


@pytest.mark.parametrize(
    "color",
    [(40, 160, 60), (128, 128, 128)],  # a green landscape-like picture, a gray document-like one
)
def test_non_skin_pictures_are_not_dermoscopic(color):
    rng = np.random.default_rng(0)
    image = np.clip(np.full((300, 300, 3), color, np.float32) + rng.normal(0, 12, (300, 300, 1)), 0, 255)
    assert "not_dermoscopic" in assess_quality(image.astype(np.uint8))


def test_bluish_dermoscope_light_is_still_dermoscopic(synth):
    image = synth.disc_image().astype(np.float32)
    image *= np.array([0.8, 0.9, 1.15], np.float32)  # a cold light source
    assert "not_dermoscopic" not in assess_quality(np.clip(image, 0, 255).astype(np.uint8))


def test_codes_are_documented(synth):
    for image in (np.zeros((64, 64, 3), np.uint8), synth.uniform_skin()):
        assert set(assess_quality(image)) <= set(QUALITY_CODES)


def test_quality_thresholds_come_from_lesion_config(synth):
    image = synth.disc_image()
    assert assess_quality(image) == []
    assert "blurry" in assess_quality(image, config=DEFAULT_CONFIG.with_(quality_blur_min_laplacian_var=1e9))
    assert "too_dark" in assess_quality(image, config=DEFAULT_CONFIG.with_(quality_dark_max_mean_brightness=255.0))
    assert "too_bright" in assess_quality(image, config=DEFAULT_CONFIG.with_(quality_bright_min_mean_brightness=0.0))
    assert "not_dermoscopic" in assess_quality(image, config=DEFAULT_CONFIG.with_(quality_min_mean_chroma=1e3))
