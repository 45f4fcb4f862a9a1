"""The LesionAnalysis contract: to_dict schema, overlays, input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from melascan.errors import ImageError
from melascan.lesion import COLOR_NAMES, COLOR_PALETTE, LesionAnalysis, analyze_lesion, make_overlays

REQUIRED_KEYS = {
    "asymmetry", "asymmetry_axes", "border", "compactness", "fractal_dimension", "colors",
    "color_fractions", "diameter_px", "diameter_mm", "exceeds_6mm", "tds", "tds_band",
    "tds_inputs", "quality", "segmentation_flags", "segmentation_confidence",
}  # fmt: skip


def test_to_dict_is_json_safe_with_the_documented_keys(synth):
    a = analyze_lesion(synth.ellipse_image(), mm_per_px=0.02)
    assert isinstance(a, LesionAnalysis)
    assert a.mask.shape == (300, 300) and a.mask.dtype == bool
    d = a.to_dict()
    assert REQUIRED_KEYS <= set(d)
    text = json.dumps(d, allow_nan=False)  # no NaN, no numpy types
    assert json.loads(text) == d
    assert 0 <= d["asymmetry"] <= 2 and 0 <= d["border"] <= 8
    assert set(d["colors"]) <= set(COLOR_NAMES)
    assert set(d["color_fractions"]) == set(COLOR_NAMES)
    assert d["tds_band"] in ("benign", "suspicious", "melanoma")
    assert set(d["asymmetry_axes"]) >= {"shape_major", "shape_minor", "color_major_de", "color_minor_de"}
    assert len(d["border_octant_slopes"]) == 8


def test_no_lesion_to_dict_is_json_safe(synth):
    d = analyze_lesion(synth.uniform_skin()).to_dict()
    json.dumps(d, allow_nan=False)
    assert REQUIRED_KEYS <= set(d)


def test_overlays_have_the_image_shape_and_show_something(synth):
    image = synth.two_color_image()
    a = analyze_lesion(image)
    overlays = make_overlays(image, a)
    assert set(overlays) == {"contour", "axes", "colors", "structures"}
    for kind, out in overlays.items():
        assert out.shape == image.shape and out.dtype == np.uint8, kind
        assert not np.array_equal(out, image), kind
    # the colour map paints the lesion in the legend's palette
    painted = overlays["colors"][a.mask]
    light = np.array(COLOR_PALETTE["light_brown"], float)
    assert (np.abs(painted.astype(float) - (0.7 * light + 0.3 * painted.mean(0))).sum(1) < 80).mean() > 0.2


def test_overlays_without_lesion_do_not_fail(synth):
    image = synth.uniform_skin()
    overlays = make_overlays(image, analyze_lesion(image))
    assert np.array_equal(overlays["contour"], image)


def test_overlays_refuse_a_mismatched_image(synth):
    a = analyze_lesion(synth.disc_image())
    with pytest.raises(ValueError):
        make_overlays(np.zeros((100, 100, 3), np.uint8), a)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((300, 300), np.uint8), np.zeros((300, 300, 3), np.float32), np.zeros((8, 8, 3), np.uint8), "image.png"],
)
def test_bad_inputs_raise_image_error(bad):
    with pytest.raises(ImageError):
        analyze_lesion(bad)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan")])
def test_bad_scale_is_refused(synth, scale):
    with pytest.raises(ValueError):
        analyze_lesion(synth.disc_image(), mm_per_px=scale)


def test_non_square_and_odd_sized_images(synth):
    image = synth.disc_image(size=300)[:, 20:257]  # 300 x 237
    a = analyze_lesion(image)
    assert a.mask.shape == image.shape[:2] and a.found
    assert make_overlays(image, a)["axes"].shape == image.shape
