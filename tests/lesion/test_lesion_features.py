"""ABCD features and TDS on synthetic lesions with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from melascan.lesion import analyze_lesion
from melascan.lesion.asymmetry import fold_asymmetry, principal_axes
from melascan.lesion.border import compactness_index, fractal_dimension
from melascan.lesion.colors import COLOR_NAMES, classify_pixels
from melascan.lesion.diameter import diameter, max_feret_px
from melascan.lesion.segmentation import outer_contour, rgb_to_lab
from melascan.lesion.tds import tds, tds_band, total_dermoscopy_score


def test_centred_disc_is_symmetric_round_and_measured(synth):
    radius = 60
    a = analyze_lesion(synth.disc_image(radius=radius), mm_per_px=0.05)
    d = a.to_dict()
    assert d["asymmetry"] == 0
    assert d["asymmetry_axes"]["shape_major"] < 0.03 and d["asymmetry_axes"]["shape_minor"] < 0.03
    assert d["compactness"] == pytest.approx(1.0, abs=0.08)
    assert 0.9 < d["fractal_dimension"] < 1.15
    true_px = 2 * radius + 1
    assert d["diameter_px"] == pytest.approx(true_px, rel=0.04)
    assert d["diameter_mm"] == pytest.approx(true_px * 0.05, rel=0.04)
    assert d["exceeds_6mm"] is True
    assert d["colors"] == ["dark_brown"]


def test_diameter_in_mm_only_with_a_scale(synth):
    a = analyze_lesion(synth.disc_image(radius=40))
    d = a.to_dict()
    assert d["diameter_mm"] is None and d["exceeds_6mm"] is None
    small = analyze_lesion(synth.disc_image(radius=40), mm_per_px=0.05).to_dict()
    assert small["diameter_mm"] == pytest.approx(81 * 0.05, rel=0.05)
    assert small["exceeds_6mm"] is False


def test_ellipse_is_symmetric_but_elongated(synth):
    d = analyze_lesion(synth.ellipse_image(axes=(90, 45), angle=30)).to_dict()
    assert d["asymmetry"] == 0
    assert d["compactness"] > 1.12  # P^2 / 4 pi A of a 2:1 ellipse is about 1.25
    assert d["diameter_px"] == pytest.approx(181, rel=0.04)  # the major axis
    assert d["axes"]["angle_deg"] % 180 == pytest.approx(30, abs=3)  # both measured with y pointing down


@pytest.mark.parametrize("builder", ["half_disc_image", "crescent_image"])
def test_half_moon_is_asymmetric_about_one_axis_only(synth, builder):
    d = analyze_lesion(getattr(synth, builder)()).to_dict()
    axes = d["asymmetry_axes"]
    assert d["asymmetry"] == 1
    folds = sorted([axes["shape_major"], axes["shape_minor"]])
    assert folds[0] < 0.05 and folds[1] > 0.15


def test_two_colour_lesion_counts_two_colours(synth):
    d = analyze_lesion(synth.two_color_image()).to_dict()
    assert d["colors"] == ["light_brown", "dark_brown"]
    assert d["color_fractions"]["light_brown"] == pytest.approx(0.5, abs=0.1)
    assert d["color_fractions"]["dark_brown"] == pytest.approx(0.5, abs=0.1)
    # the two halves differ in colour, so both axes cannot be called symmetric
    assert d["asymmetry"] >= 1


def test_black_and_dark_brown_lesion(synth):
    d = analyze_lesion(synth.two_color_image(left=synth.DARK_BROWN, right=synth.BLACK)).to_dict()
    assert d["colors"] == ["dark_brown", "black"]


def test_classify_pixels_names_reference_colours():
    skin = np.array([72.0, 14.0, 18.0], np.float32)
    samples = {
        "black": (15.0, 2.0, 2.0),
        "blue_gray": (45.0, -2.0, -8.0),
        "white": (78.0, 2.0, 4.0),
        "red": (50.0, 45.0, 10.0),
        "dark_brown": (38.0, 15.0, 22.0),
        "light_brown": (57.0, 16.0, 28.0),
    }
    lab = np.array(list(samples.values()), np.float32)
    index = classify_pixels(lab, skin)
    assert [COLOR_NAMES[i - 1] for i in index] == list(samples)
    assert classify_pixels(skin[None], skin)[0] == 0  # skin itself has no name


def test_geometry_helpers_on_exact_masks():
    mask = np.zeros((201, 201), np.uint8)  # odd size: the centre pixel is the fold line
    cv2.ellipse(mask, (100, 100), (60, 30), 0, 0, 360, 1, -1)
    mask = mask > 0
    axes = principal_axes(mask)
    assert axes.cx == pytest.approx(100, abs=0.5) and axes.cy == pytest.approx(100, abs=0.5)
    assert axes.angle_deg == pytest.approx(0, abs=1)
    assert axes.major_length_px == pytest.approx(120, rel=0.03)  # 4 sigma of a uniform ellipse = 2a
    assert max_feret_px(outer_contour(mask)) == pytest.approx(121, abs=1.5)
    assert all(v < 0.02 for v in fold_asymmetry(mask))
    disc = np.zeros((200, 200), np.uint8)
    cv2.circle(disc, (100, 100), 50, 1, -1)
    assert compactness_index(disc > 0) == pytest.approx(1.0, abs=0.06)
    assert fractal_dimension(disc > 0) == pytest.approx(1.0, abs=0.12)


def test_ragged_border_has_higher_fractal_dimension_and_compactness():
    smooth = np.zeros((256, 256), np.uint8)
    cv2.circle(smooth, (128, 128), 80, 1, -1)
    angles = np.linspace(0, 2 * math.pi, 400, endpoint=False)
    rng = np.random.default_rng(0)
    radii = 80 + 14 * np.sin(17 * angles) + rng.normal(0, 4, angles.size)
    pts = np.stack([128 + radii * np.cos(angles), 128 + radii * np.sin(angles)], 1).astype(np.int32)
    ragged = np.zeros_like(smooth)
    cv2.fillPoly(ragged, [pts], 1)
    assert fractal_dimension(ragged > 0) > fractal_dimension(smooth > 0) + 0.05
    assert compactness_index(ragged > 0) > compactness_index(smooth > 0) + 0.2


def test_diameter_function_units():
    contour = np.array([[0, 0], [99, 0], [99, 9], [0, 9]], np.int32)
    d = diameter(contour, mm_per_px=0.1)
    assert d.diameter_px == pytest.approx(math.hypot(99, 9) + 1, abs=0.01)
    assert d.diameter_mm == pytest.approx(d.diameter_px * 0.1, abs=1e-3)
    assert d.exceeds_6mm is True


def test_tds_formula_and_bands():
    assert total_dermoscopy_score(2, 8, 6, 5) == pytest.approx(1.3 * 2 + 0.8 + 3.0 + 2.5)
    assert tds_band(4.74) == "benign"
    assert tds_band(4.75) == "suspicious" and tds_band(5.45) == "suspicious"
    assert tds_band(5.46) == "melanoma"
    result = tds(1, 4, 3, 2)
    assert result.value == pytest.approx(1.3 + 0.4 + 1.5 + 1.0)
    assert result.inputs() == {"A": 1, "B": 4, "C": 3, "D": 2, "D_source": "assumed"}
    with pytest.raises(ValueError):
        tds(3, 0, 0, 1)


def test_tds_uses_given_structures_count(synth):
    image = synth.disc_image()
    measured = analyze_lesion(image)
    assumed = measured.to_dict()  # D is measured unless a person gives it
    given = analyze_lesion(image, structures_count=4).to_dict()
    assert assumed["tds_inputs"]["D_source"] == "measured"
    assert assumed["tds_inputs"]["D"] == measured.structures.stolz_d
    assert given["tds_inputs"] == {**assumed["tds_inputs"], "D": 4, "D_source": "given"}
    assert given["tds"] == pytest.approx(assumed["tds"] + 0.5 * (4 - assumed["tds_inputs"]["D"]))


def test_lab_conversion_of_reference_colours():
    lab = rgb_to_lab(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8))
    assert lab[0, 0, 0] == pytest.approx(100, abs=0.5) and lab[0, 1, 0] == pytest.approx(0, abs=0.5)
