"""The risk rule, the model-card metric lookup and the presentation helpers (pure functions),
fed with what the code really produces: the shipped model card and ``run_analysis`` results of a
committed sample (with a field changed where a case needs it)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from melascan.inference.card import decision_thresholds
from melascan.web.analysis import run_analysis, split_images
from melascan.web.i18n import translate
from melascan.web.model import model_card
from melascan.web.present import compare_rows, feature_rows, percent
from melascan.web.risk import (LOOK_ALIKE_MIN_IMAGES, SHIPPED_SETS, look_alikes, model_level, operating_points,
                               risk_assessment)

THRESHOLDS = {"screening": 0.2, "balanced": 0.5}
SAMPLE = Path(__file__).resolve().parents[2] / "src" / "melascan" / "assets" / "samples" / "malignant_1.jpg"


def en(key, **values):
    return translate(key, "en", **values)


@pytest.fixture(scope="module")
def card() -> dict:
    return copy.deepcopy(model_card())


@pytest.fixture(scope="module")
def analysis() -> dict:
    """The stored JSON part of a real analysis of a committed sample (no scale entered)."""
    return split_images(run_analysis(SAMPLE.read_bytes(), SAMPLE.name))[0]


@pytest.fixture(scope="module")
def scaled() -> dict:
    """The same photo analysed with a scale of 0.02 mm per pixel."""
    return split_images(run_analysis(SAMPLE.read_bytes(), SAMPLE.name, mm_per_px=0.02))[0]


def _with(result: dict, risk: dict | None = None, **lesion) -> dict:
    """A copy of ``result`` with lesion fields (and the risk block) replaced."""
    out = copy.deepcopy(result)
    out["lesion"].update(lesion)
    if risk is not None:
        out["risk"] = risk
    return out


@pytest.mark.parametrize(
    "p, expected",
    [(0.0, "low"), (0.199, "low"), (0.2, "moderate"), (0.49, "moderate"), (0.5, "high"), (1.0, "high")],
)
def test_model_level_uses_both_thresholds(p, expected):
    assert model_level(p, 0.2, 0.5) == expected


def test_model_level_with_equal_thresholds_has_no_moderate_band():
    assert model_level(0.49, 0.5, 0.5) == "low"
    assert model_level(0.5, 0.5, 0.5) == "high"


@pytest.mark.parametrize(
    "p, band, expected",
    [
        (0.1, "benign", "low"),
        (0.1, "suspicious", "moderate"),
        (0.1, "melanoma", "moderate"),  # at most one step up
        (0.3, "suspicious", "moderate"),
        (0.3, "melanoma", "high"),
        (0.9, "benign", "high"),  # TDS never lowers the model's level
        (0.3, None, "moderate"),
    ],
)
def test_tds_band_raises_by_at_most_one_step_and_never_lowers(p, band, expected):
    assert risk_assessment(p, THRESHOLDS, band, [])["level"] == expected


def test_blocking_warning_turns_low_into_cannot_judge():
    risk = risk_assessment(0.05, THRESHOLDS, "benign", ["blurry"])
    assert risk["level"] == "unknown"
    assert risk["quality_limited"] and risk["blocking_warnings"] == ["blurry"]
    assert not risk["suspicious"]


def test_blocking_warning_never_hides_a_suspicious_result():
    risk = risk_assessment(0.8, THRESHOLDS, None, ["too_dark"])
    assert risk["level"] == "high" and risk["quality_limited"] and risk["suspicious"]


def test_non_blocking_and_unknown_warnings():
    assert risk_assessment(0.05, THRESHOLDS, None, ["touches_border"])["level"] == "low"
    # a code the app does not know is treated as blocking: when in doubt, do not reassure
    assert risk_assessment(0.05, THRESHOLDS, None, ["some_new_flag"])["level"] == "unknown"


def test_operating_points_of_the_shipped_card_come_from_its_external_validation(card):
    points = operating_points(card)
    sets = card["external_validation"]["sets"]
    assert points and {p["name"] for p in points} == {"screening", "balanced"}
    for p in points:
        block = sets[p["set"]]["thresholds"][p["name"]]
        assert (p["sensitivity"], p["specificity"], p["n"]) == (block["sensitivity"], block["specificity"],
                                                                 sets[p["set"]]["n"])
        assert p["threshold"] == decision_thresholds(card)[p["name"]]
    assert [p["set"] for p in points if p["name"] == "screening"] == [s for s in SHIPPED_SETS if s in sets]


def test_operating_points_of_an_unfused_card_read_the_metrics_the_card_writer_summarises(card):
    plain = {k: v for k, v in card.items() if k not in ("fusion", "external_validation")}
    screening, balanced = operating_points(plain)
    test = card["metrics"]["test"]
    assert (screening["sensitivity"], screening["specificity"], screening["set"], screening["n"]) == (
        test["sensitivity_screening"], test["specificity_screening"], "test", test["n_images"])
    assert (balanced["sensitivity"], balanced["specificity"]) == (test["sensitivity_balanced"],
                                                                  test["specificity_balanced"])
    assert screening["threshold"] == card["calibration"]["thresholds"]["screening"]


def test_operating_points_without_metrics(card):
    plain = {k: v for k, v in card.items() if k not in ("fusion", "metrics", "external_validation")}
    for blank in (plain, {**plain, "fusion": {"thresholds": {"screening": 0.02, "balanced": 0.07}}}):
        points = operating_points(blank)
        assert [p["name"] for p in points] == ["screening", "balanced"]
        assert all(p["sensitivity"] is None and p["set"] is None for p in points)


def test_look_alikes_are_the_cards_ham10000_benign_diagnoses_most_often_rated_high_first(card):
    groups = card["external_validation"]["sets"]["ham_test"]["benign_diagnoses"]
    rows = look_alikes(card)
    assert rows and [r["high_rate"] for r in rows] == sorted((r["high_rate"] for r in rows), reverse=True)
    assert {r["diagnosis"] for r in rows} == {d for d, g in groups.items() if g["n"] >= LOOK_ALIKE_MIN_IMAGES}
    for r in rows:
        called = groups[r["diagnosis"]]["called_malignant"]
        assert (r["n"], r["high_rate"], r["flagged_rate"], r["set"]) == (
            groups[r["diagnosis"]]["n"], called["balanced"], called["screening"], "ham_test")
        assert r["flagged_rate"] >= r["high_rate"]  # the screening threshold is the lower one
        assert not en(f"diagnosis.{r['diagnosis']}").startswith("diagnosis.")  # every listed one has a name


def test_no_look_alikes_without_a_measured_breakdown(card):
    assert look_alikes({k: v for k, v in card.items() if k != "external_validation"}) == []
    bare = copy.deepcopy(card)
    del bare["external_validation"]["sets"]["ham_test"]["benign_diagnoses"]
    assert look_alikes(bare) == []


def test_percent_and_the_base_rate_sentence():
    assert percent(0.234) == "23%"
    assert percent(0.001) == "<1%"
    assert percent(0.999) == ">99%"
    assert percent(1.0) == "100%"
    assert percent(None) == "—"
    sentence = en("result.probability.sentence", pct="23%")
    assert "23%" in sentence and "15 in 100" in sentence and "not as your personal risk" in sentence


def test_feature_rows_explain_every_value(analysis, scaled):
    lesion = analysis["lesion"]
    rows = {r["key"]: r for r in feature_rows(lesion, en)}
    assert set(rows) == {"asymmetry", "border", "colors", "structures", "diameter", "tds"}
    names = ", ".join(en(f"color.{c}") for c in lesion["colors"])
    assert rows["colors"]["value"] == f"{len(lesion['colors'])} ({names})"
    assert rows["diameter"]["value"] == f"{lesion['diameter_px']:.0f} px"
    assert rows["diameter"]["explain"] == en("feature.diameter.explain_px")
    assert "4.75" in rows["tds"]["explain"]
    assert all(r["explain"] and not r["explain"].startswith("feature.") for r in rows.values())
    mm = {r["key"]: r for r in feature_rows(scaled["lesion"], en)}["diameter"]
    assert mm["value"] == f"{scaled['lesion']['diameter_mm']:.1f} mm" and mm["explain"] == en("feature.diameter.explain")


def test_feature_rows_empty_when_no_lesion():
    assert feature_rows({}, en) == []


def test_compare_rows_direction(analysis):
    old = _with(analysis, asymmetry=0, tds=3.0)
    new = _with(analysis, asymmetry=2, tds=5.9, risk={**analysis["risk"], "level": "high"})
    old["risk"] = {**analysis["risk"], "level": "low"}
    rows = compare_rows(old, new, en, 0.1, 0.6)
    by_name = {r["name"]: r for r in rows}
    assert by_name[en("result.probability.short")]["change"] == "+50 points"
    assert by_name[en("result.risk_level")]["direction"] == "up"
    assert by_name[en("feature.tds.name")]["direction"] == "up"


def test_compare_rows_compare_the_diameter_in_mm_only_when_both_photos_have_a_scale(analysis, scaled):
    rows = {r["name"]: r for r in compare_rows(analysis, scaled, en, 0.3, 0.3)}
    px = rows[en("feature.diameter.name") + " (px)"]
    assert px["direction"] == "na" and px["change"] == "—" and px["note"] == en("compare.diameter_px")
    bigger = _with(scaled, diameter_mm=scaled["lesion"]["diameter_mm"] * 2)
    mm = {r["name"]: r for r in compare_rows(scaled, bigger, en, 0.3, 0.3)}[en("feature.diameter.name") + " (mm)"]
    assert mm["direction"] == "up" and "note" not in mm


def test_untrained_model_never_reassures():
    risk = risk_assessment(0.05, THRESHOLDS, "benign", [], model_status="untrained")
    assert risk["level"] == "unknown" and risk["blocking_warnings"] == ["untrained_model"]
    assert risk["reasons"][-1] == "untrained_model"
    assert risk_assessment(0.9, THRESHOLDS, None, [], model_status="untrained")["level"] == "high"


def test_a_picture_unlike_the_validation_images_never_reassures():
    from melascan.web.present import advice_key, unfamiliar_note

    risk = risk_assessment(0.05, THRESHOLDS, "benign", [], familiar=False)
    assert risk["level"] == "unknown" and risk["blocking_warnings"] == ["unfamiliar_picture"]
    assert risk["reasons"][-1] == "unfamiliar_picture" and not risk["quality_limited"]
    assert advice_key(risk) == "result.advice.unknown_unfamiliar" and unfamiliar_note(risk) is None
    high = risk_assessment(0.9, THRESHOLDS, None, [], familiar=False)
    assert high["level"] == "high" and unfamiliar_note(high) == "result.unfamiliar_suspicious"
    blurry = risk_assessment(0.05, THRESHOLDS, None, ["blurry"], familiar=False)
    assert blurry["reasons"][-1] == "quality" and advice_key(blurry) == "result.advice.unknown"  # retake first
    for familiar in (True, None):  # familiar, or a model without a familiar cut
        assert risk_assessment(0.05, THRESHOLDS, "benign", [], familiar=familiar)["level"] == "low"
    assert en("warning.unfamiliar_picture") and "unfamiliar" not in en("result.advice.unknown_unfamiliar")


@pytest.mark.parametrize("p, band", [(0.9, "melanoma"), (0.05, "benign")])
def test_out_of_scope_image_gets_no_level_whatever_the_probability(p, band):
    risk = risk_assessment(p, THRESHOLDS, band, [], in_scope=False)
    assert risk["level"] == "out_of_scope" and risk["model_level"] is None and not risk["suspicious"]
    assert risk["blocking_warnings"] == ["out_of_scope"]
    assert "retake" in en("result.headline.out_of_scope")
    assert risk_assessment(p, THRESHOLDS, band, [], in_scope=True)["level"] != "out_of_scope"


def test_a_fused_model_shows_only_numbers_measured_on_what_ships(card):
    fusion = {"thresholds": {"screening": 0.02, "balanced": 0.07}}
    unmeasured = {**card, "fusion": fusion, "external_validation": {}}  # its metrics are of the network alone
    points = operating_points(unmeasured)
    assert [(p["name"], p["threshold"], p["sensitivity"]) for p in points] == [
        ("screening", 0.02, None), ("balanced", 0.07, None)]
    from melascan.web.present import set_name

    assert set_name("ph2", en).startswith("PH2") and set_name("official", en) == "official"
    assert "HAM10000" in set_name("ham_test", lambda key: translate(key, "ko")) and set_name(None, en) == ""


def test_compare_calls_changes_inside_the_test_retest_band_no_measurable_change(analysis):
    from melascan.web.present import measurement_bands

    bands = measurement_bands()
    assert {"probability", "asymmetry", "border", "colors", "tds", "diameter_relative"} <= set(bands)
    lesion = _with(analysis, tds=4.0)
    small = bands["probability"] / 2
    rows = compare_rows(lesion, lesion, en, 0.30, 0.30 + small)
    assert rows[0]["direction"] == "same" and en("compare.within_noise") in rows[0]["change"]
    rows = compare_rows(lesion, lesion, en, 0.30, 0.30 + 3 * bands["probability"])
    assert rows[0]["direction"] == "up" and en("compare.within_noise") not in rows[0]["change"]
    moved = _with(analysis, tds=4.0 + bands["tds"] * 2)
    tds_row = next(r for r in compare_rows(lesion, moved, en, 0.3, 0.3) if "TDS" in r["name"])
    assert tds_row["direction"] == "up"


@pytest.mark.parametrize("p, band, tds, expected", [
    (0.9, "melanoma", 6.1, "result.driver.both_suspicious"),
    (0.9, "benign", 2.5, "result.driver.model_not_tds"),    # the headline must not claim both agree
    (0.01, "suspicious", 5.0, "result.driver.tds_raised"),
    (0.01, "benign", 2.5, "result.driver.both_low"),
    (0.9, None, None, "result.driver.model_only_no_lesion"),
])
def test_the_sentence_under_the_headline_says_what_drove_the_level(analysis, p, band, tds, expected):
    from melascan.web.present import driver

    lesion = _with(analysis, tds=tds, tds_band=band)["lesion"]
    risk = risk_assessment(p, THRESHOLDS, lesion["tds_band"], [])
    key, values = driver(risk, lesion)
    assert key == expected and en(key, **values)
    assert ("TDS" in en(key, **values)) == (tds is not None)
    assert driver(risk_assessment(p, THRESHOLDS, band, [], in_scope=False), lesion) is None
