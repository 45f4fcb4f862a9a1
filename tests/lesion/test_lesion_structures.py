"""Differential structures, Stolz's D and the 7-point score on synthetic images with
known answers (the images are drawn here; nothing is read from disk)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from melascan.lesion import SEVEN_POINT_CUTOFF, STRUCTURE_NAMES, Structures, analyze_lesion, make_overlays
from melascan.lesion.config import DEFAULT_CONFIG
from melascan.lesion.structures import (
    PRESENCE,
    atypia_probability,
    decide_structures,
    load_structure_model,
    structure_features,
)

NONE_FOUND = {
    "pigment_network": "absent",
    "dots_globules": "absent",
    "streaks": False,
    "regression": False,
    "blue_whitish_veil": False,
}


def found(image) -> dict:
    return analyze_lesion(image).to_dict()["structures"]


def test_plain_disc_has_no_structures(synth):
    for image in (synth.disc_image(), synth.disc_image(color=synth.LIGHT_BROWN, radius=80, seed=3)):
        assert found(image) == NONE_FOUND


def test_small_lesion_has_no_texture_structures(synth):
    s = found(synth.disc_image(radius=9))
    assert s["pigment_network"] == "absent" and s["dots_globules"] == "absent" and s["streaks"] is False


def test_drawn_reticular_grid_is_a_pigment_network(synth):
    s = found(synth.network_image())
    assert s["pigment_network"] in ("typical", "atypical")
    assert not s["streaks"] and not s["blue_whitish_veil"]


def test_scattered_dark_dots_are_dots_globules(synth):
    s = found(synth.dots_image())
    assert s["dots_globules"] in ("typical", "atypical")
    assert s["pigment_network"] == "absent"  # isolated dots enclose no mesh holes
    assert not s["streaks"] and not s["blue_whitish_veil"]


def test_radial_lines_at_the_border_are_streaks(synth):
    s = found(synth.streaks_image())
    assert s["streaks"] is True
    assert s["pigment_network"] == "absent" and not s["blue_whitish_veil"]


def test_blue_white_blotch_is_a_veil(synth):
    s = found(synth.veil_image())
    assert s["blue_whitish_veil"] is True
    assert s["pigment_network"] == "absent" and not s["streaks"]


def test_to_dict_reports_structures_seven_point_and_measured_d(synth):
    a = analyze_lesion(synth.veil_image())
    d = a.to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d["structures"]) == set(STRUCTURE_NAMES)
    assert set(d["structure_scores"]) == set(STRUCTURE_NAMES)
    assert isinstance(d["seven_point"], int) and d["seven_point"] == a.structures.seven_point
    assert d["seven_point"] >= 2  # the veil alone scores 2
    assert d["seven_point_suspicious"] == (d["seven_point"] >= SEVEN_POINT_CUTOFF)
    assert d["tds_inputs"]["D_source"] == "measured"
    assert d["tds_inputs"]["D"] == a.structures.stolz_d == 1  # the veil: one structureless area


def test_no_lesion_has_no_structures(synth):
    d = analyze_lesion(synth.uniform_skin()).to_dict()
    assert d["structures"] is None and d["seven_point"] is None and d["tds"] is None


def _structures(**changes) -> Structures:
    return Structures(**(NONE_FOUND | changes), scores={}, atypia={}, features={})


def test_stolz_d_counts_structures_between_1_and_5():
    assert _structures().stolz_d == 1  # nothing found still counts 1 (Stolz's range)
    assert _structures(pigment_network="typical").stolz_d == 1
    assert _structures(pigment_network="typical", dots_globules="atypical").stolz_d == 2
    both = _structures(pigment_network="atypical", dots_globules="typical", streaks=True, regression=True,
                       blue_whitish_veil=True)
    assert both.stolz_d == 4  # regression and veil are one structureless area


def test_seven_point_weights():
    assert _structures().seven_point == 0
    assert _structures(pigment_network="typical", dots_globules="typical").seven_point == 0
    assert _structures(pigment_network="atypical").seven_point == 2
    assert _structures(blue_whitish_veil=True).seven_point == 2
    every = _structures(pigment_network="atypical", dots_globules="atypical", streaks=True, regression=True,
                        blue_whitish_veil=True)
    assert every.seven_point == 7
    assert _structures(pigment_network="atypical", streaks=True).seven_point == SEVEN_POINT_CUTOFF


def test_overlay_paints_the_structures_found(synth):
    image = synth.network_image()
    a = analyze_lesion(image)
    overlay = make_overlays(image, a)["structures"]
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    yellow = (overlay[:, :, 0] > 200) & (overlay[:, :, 1] > 170) & (overlay[:, :, 2] < 120)
    assert yellow[a.mask].mean() > 0.2  # the network's mesh is painted
    plain = synth.disc_image()
    bare = make_overlays(plain, analyze_lesion(plain))["structures"]
    assert not ((bare[:, :, 0] > 200) & (bare[:, :, 1] > 170) & (bare[:, :, 2] < 120)).any()


def test_decisions_follow_the_thresholds():
    model = load_structure_model()
    names = {k for m in model.values() for k in m["features"]} | {key for key, _ in PRESENCE.values()}
    features = dict.fromkeys(names, 0.0)
    decisions, scores, atypia = decide_structures(features, DEFAULT_CONFIG, model)
    assert decisions == NONE_FOUND and atypia == {"pigment_network": None, "dots_globules": None}
    features["veil_fraction"] = DEFAULT_CONFIG.veil_min_fraction
    features["network_fraction"] = 0.5
    decisions, scores, atypia = decide_structures(features, DEFAULT_CONFIG, model)
    assert decisions["blue_whitish_veil"] is True and scores["blue_whitish_veil"] == DEFAULT_CONFIG.veil_min_fraction
    assert decisions["pigment_network"] in ("typical", "atypical")
    assert 0.0 <= atypia["pigment_network"] <= 1.0


def test_atypia_model_is_a_logistic_of_standardised_features():
    model = {"features": ["x"], "mean": [1.0], "scale": [2.0], "coef": [3.0], "intercept": -1.0}
    assert atypia_probability({"x": 1.0}, model) == pytest.approx(1 / (1 + np.exp(1.0)))
    assert atypia_probability({"x": 1e9}, model) == pytest.approx(1.0)


def test_structure_features_refuse_an_empty_mask():
    lab = np.zeros((50, 50, 3), np.float32)
    empty = np.zeros((50, 50), bool)
    with pytest.raises(ValueError):
        structure_features(lab, empty, (70.0, 15.0, 20.0), np.ones((50, 50), bool))
