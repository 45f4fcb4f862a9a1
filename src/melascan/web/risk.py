"""The risk rule: from the model's probability, the TDS band and the quality codes to the level
shown, and the validated operating points the model card reports (pure functions)."""

from __future__ import annotations

from typing import Any

from melascan.inference import card as model_card

LEVELS = ("low", "moderate", "high")
#: The level reported when image-quality problems keep the app from judging a lesion.
UNKNOWN = "unknown"
#: The level (and blocking code) of an image the scope detector rejects: no probability is shown.
OUT_OF_SCOPE = "out_of_scope"
#: Blocking code added when the model card's status is not "trained".
UNTRAINED = "untrained_model"
#: Blocking code added when the picture is in scope but unlike the validation images
#: (``Prediction.familiar`` False): the model's measured numbers do not cover it.
UNFAMILIAR = "unfamiliar_picture"

#: Warnings that are shown but still let the app judge: the segmentation's own flags
#: (the spot runs off the picture, or is small in it). Every other code, i.e. the
#: quality codes of ``melascan.lesion.quality`` (blurry, too_dark, too_bright, no_lesion,
#: not_dermoscopic) and any code this module does not know, blocks reassurance.
NON_BLOCKING_WARNINGS = frozenset({"touches_border", "too_small"})

#: TDS band (``melascan.lesion.tds.BANDS``) -> how many risk steps it suggests (0 = none).
TDS_BAND_STEPS = {"benign": 0, "suspicious": 1, "melanoma": 2, "malignant": 2}


def model_level(probability: float, screening: float, balanced: float) -> str:
    """Level from the calibrated probability and the model card's two thresholds.

    ``p >= balanced`` -> high; ``screening <= p < balanced`` -> moderate; else low.
    (The screening threshold is the lower, high-sensitivity one.)
    """
    low_t, high_t = sorted((screening, balanced))
    if probability >= high_t:
        return "high"
    if probability >= low_t:
        return "moderate"
    return "low"


def risk_assessment(
    probability: float,
    thresholds: dict[str, float],
    tds_band: str | None,
    warnings: list[str],
    model_status: str = "trained",
    in_scope: bool | None = None,
    familiar: bool | None = None,
) -> dict[str, Any]:
    """The risk level shown to the user, with the reasons that produced it.

    The rule:

    0. An image the model's scope detector rejects (``in_scope`` False: not a dermoscopic
       image of a skin lesion) gets no level at all: ``out_of_scope``, and the app shows
       no probability for it, only how to retake the photo.

    1. The model gives a level (``model_level``): the validated part of the app.
    2. The TDS band can raise it, never lower it, and by at most one step:
       a ``suspicious`` band (TDS 4.75-5.45) lifts low to moderate; a ``melanoma`` band
       (TDS > 5.45) lifts low to moderate and moderate to high.
    3. If a blocking quality warning is present (blurry, too dark, no lesion found,
       not a dermoscopic image ...) a *low* result becomes ``unknown`` ("cannot judge"):
       the app never reassures about an image it cannot read. Moderate and high stay
       (a suspicious result is never hidden) but are marked ``quality_limited``.
    4. The same holds for a model whose card is not ``"status": "trained"`` (the
       placeholder): its low result is ``unknown`` too (blocking code ``untrained_model``),
       and for a picture unlike the images the model's numbers were measured on
       (``familiar`` False, blocking code ``unfamiliar_picture``): a number not measured on
       pictures like it must not reassure. Moderate and high stay, marked by the code.
    """
    if in_scope is False:
        return {"level": OUT_OF_SCOPE, "model_level": None, "tds_band": None, "quality_limited": True,
                "blocking_warnings": [OUT_OF_SCOPE], "reasons": [OUT_OF_SCOPE], "suspicious": False}
    level_model = model_level(probability, thresholds["screening"], thresholds["balanced"])
    index = LEVELS.index(level_model)
    reasons = [f"model_{level_model}"]
    steps = TDS_BAND_STEPS.get(tds_band or "", 0)
    if steps:
        raised = min(max(index, min(steps, index + 1)), len(LEVELS) - 1)
        if raised > index:
            reasons.append(f"tds_{tds_band}")
        index = max(index, raised)
    level = LEVELS[index]
    blocking = [w for w in warnings if w not in NON_BLOCKING_WARNINGS]
    quality_limited = bool(blocking)
    if model_status != "trained":
        blocking.append(UNTRAINED)
    if familiar is False:
        blocking.append(UNFAMILIAR)
    if blocking and level == "low":
        level = UNKNOWN
        reasons.append("quality" if quality_limited else UNTRAINED if UNTRAINED in blocking else UNFAMILIAR)
    return {
        "level": level,
        "model_level": level_model,
        "tds_band": tds_band,
        "quality_limited": quality_limited,
        "blocking_warnings": blocking,
        "reasons": reasons,
        "suspicious": level in ("moderate", "high"),
    }


def operating_points(card: dict) -> list[dict[str, Any]]:
    """Validated sensitivity/specificity at each threshold, as far as the card reports them.

    Returns dicts with ``name``, ``threshold``, ``sensitivity``, ``specificity``, ``n`` (images)
    and ``set`` (the evaluated set); the metrics are ``None`` when the card has none (an
    untrained or unevaluated model). A card's ``metrics`` are the summaries
    ``export.runinfo.summarize_metrics`` writes: flat ``sensitivity_<threshold name>`` keys.
    """
    if card.get("fusion") or (card.get("external_validation") or {}).get("sets"):
        # measured on what ships (a fused probability is only measured there), set by set
        return _shipped_points(card)
    thresholds = card["calibration"]["thresholds"]
    metrics = card.get("metrics") or {}
    # Prefer the held-out test set, then validation, then whatever set is reported.
    order = sorted(metrics, key=lambda s: (0 if "test" in s else 1 if "val" in s else 2, s))
    points = []
    for name in ("screening", "balanced"):
        point: dict[str, Any] = {"name": name, "threshold": float(thresholds[name]), "sensitivity": None,
                                 "specificity": None, "n": None, "set": None}
        for set_name in order:
            values = metrics[set_name]
            rates = {k: values.get(f"{k}_{name}") for k in ("sensitivity", "specificity")}
            if _has_rates(rates):
                point.update(sensitivity=float(rates["sensitivity"]), specificity=float(rates["specificity"]),
                             n=values.get("n_images"), set=set_name)
                break
        points.append(point)
    return points


#: Sets of ``card["external_validation"]`` shown to people, in this order (names: ``set.<key>`` translations).
SHIPPED_SETS = ("ham_test", "ph2", "seed_test")


def _shipped_points(card: dict) -> list[dict[str, Any]]:
    """Operating points of the model as shipped: its decision thresholds, with the sensitivity and
    specificity ``benchmarks/external_validation.py`` measured on each set (none when it was not run)."""
    thresholds = model_card.decision_thresholds(card)
    sets = (card.get("external_validation") or {}).get("sets") or {}
    points = []
    for name in ("screening", "balanced"):
        blank = {"name": name, "threshold": float(thresholds[name]), "sensitivity": None, "specificity": None,
                 "n": None, "set": None}
        measured = [s for s in SHIPPED_SETS if _has_rates((sets.get(s) or {}).get("thresholds", {}).get(name))]
        for set_name in measured:
            block = sets[set_name]["thresholds"][name]
            points.append({**blank, "sensitivity": float(block["sensitivity"]),
                           "specificity": float(block["specificity"]), "n": sets[set_name].get("n"),
                           "set": set_name})
        if not measured:
            points.append(blank)
    return points


def _has_rates(block: Any) -> bool:
    return isinstance(block, dict) and all(
        isinstance(block.get(k), (int, float)) and not isinstance(block.get(k), bool)
        for k in ("sensitivity", "specificity")
    )


#: A benign diagnosis is listed as a look-alike only with at least this many test images.
LOOK_ALIKE_MIN_IMAGES = 30


def look_alikes(card: dict) -> list[dict[str, Any]]:
    """Benign diagnoses the model confuses with melanoma, as the card's external validation measured
    them on HAM10000 test lesions (``benchmarks/external_validation.py --write-card``): for each
    diagnosis with at least ``LOOK_ALIKE_MIN_IMAGES`` images, ``diagnosis``, ``n``, the share rated
    high (``high_rate``: at or above the balanced threshold) and moderate or high (``flagged_rate``:
    at or above the screening threshold); most often rated high first. Empty when not measured."""
    sets = (card.get("external_validation") or {}).get("sets") or {}
    groups = (sets.get("ham_test") or {}).get("benign_diagnoses") or {}
    rows = []
    for diagnosis, block in groups.items():
        called = block.get("called_malignant") or {}
        if (block.get("n") or 0) >= LOOK_ALIKE_MIN_IMAGES and {"balanced", "screening"} <= called.keys():
            rows.append({"diagnosis": diagnosis, "n": int(block["n"]), "set": "ham_test",
                         "high_rate": float(called["balanced"]), "flagged_rate": float(called["screening"])})
    return sorted(rows, key=lambda r: -r["high_rate"])
