"""Turn a stored analysis into the words and numbers people read (pages and PDF).

Pure functions over the analysis dict; the translation function is passed in so the
same code serves the Korean and English pages and PDFs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from melascan.lesion.colors import COLOR_PALETTE
from melascan.web.risk import TDS_BAND_STEPS, UNFAMILIAR, UNTRAINED

Translate = Callable[..., str]

#: The colour-region overlay's colours (the lesion stage owns them), for its legend.
COLOR_LEGEND = COLOR_PALETTE

#: ABCD/TDS rows shown on a result, in order: (lesion key, translation key stem).
FEATURE_ROWS = (
    ("asymmetry", "feature.asymmetry"),
    ("border", "feature.border"),
    ("colors", "feature.colors"),
    ("structures", "feature.structures"),
    ("diameter", "feature.diameter"),
    ("tds", "feature.tds"),
)


def percent(probability: float | None, digits: int = 0) -> str:
    """``0.234`` -> ``"23%"`` (``"<1%"`` / ``">99%"`` at the ends)."""
    if probability is None:
        return "—"
    value = 100.0 * float(probability)
    if digits == 0 and 0 < value < 0.5:
        return "<1%"
    if digits == 0 and 99.5 <= value < 100:
        return ">99%"
    return f"{value:.{digits}f}%"



def number(value: Any) -> float | None:
    """A feature's numeric value: numbers as they are, a list (the colours) by its length, None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return float(len(value))
    return None


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.{digits}f}"


def color_names(lesion: dict[str, Any]) -> list[str]:
    """The colour names the lesion analysis found (``LesionAnalysis.to_dict()["colors"]``)."""
    return [str(v) for v in lesion.get("colors") or []]


#: Which letter of ``lesion["tds_inputs"]`` scores each feature (the numbers the TDS used).
TDS_LETTERS = {"asymmetry": "A", "border": "B", "colors": "C", "structures": "D"}


def feature_value(lesion: dict[str, Any], key: str) -> float | None:
    """A feature's score: the value the TDS used if reported, else the feature itself."""
    inputs = lesion.get("tds_inputs") or {}
    letter = TDS_LETTERS.get(key)
    if letter and number(inputs.get(letter)) is not None:
        return number(inputs.get(letter))
    return number(lesion.get(key))


def feature_rows(lesion: dict[str, Any], t: Translate) -> list[dict[str, str]]:
    """``[{"key", "name", "value", "explain"}]`` for the ABCD(+diameter, TDS) table."""
    rows = []
    for key, stem in FEATURE_ROWS:
        if key == "diameter":
            mm = number(lesion.get("diameter_mm"))
            if mm is None and number(lesion.get("diameter_px")) is None:
                continue
            value = diameter_text(lesion)
            explain = t(f"{stem}.explain") if mm is not None else t(f"{stem}.explain_px")
        elif key == "tds":
            tds = number(lesion.get("tds"))
            if tds is None:
                continue
            value = f"{tds:.2f}"
            band = lesion.get("tds_band")
            explain = t(f"{stem}.explain") + (f" {t('tds_band.' + band)}" if band else "")
        elif key == "colors":
            count = feature_value(lesion, key)
            if count is None or lesion.get("lesion_found") is False:
                continue
            names = [t(f"color.{n}") for n in color_names(lesion)]
            value = _fmt(count) + (f" ({', '.join(names)})" if names else "")
            explain = t(f"{stem}.explain")
        elif key == "structures":
            score = feature_value(lesion, key)
            if score is None:
                continue
            value = _fmt(score)
            source = (lesion.get("tds_inputs") or {}).get("D_source", "assumed")
            explain = t(f"{stem}.explain_{source}") if source in ("given", "measured") else t(f"{stem}.explain")
        else:
            score = feature_value(lesion, key)
            if score is None:
                continue
            value = _fmt(score)
            explain = t(f"{stem}.explain")
        rows.append({"key": key, "name": t(f"{stem}.name"), "value": value, "explain": explain})
    return rows


#: Differential structures shown on a result (``lesion["structures"]``), in order.
STRUCTURE_KEYS = ("pigment_network", "dots_globules", "streaks", "regression", "blue_whitish_veil")


def structure_rows(lesion: dict[str, Any], t: Translate) -> list[dict[str, str]]:
    """``[{"key", "name", "value", "found", "explain"}]`` for the differential structures
    (empty when they were not measured). ``found`` is ``"yes"``/``"no"`` for styling."""
    found = lesion.get("structures")
    if not isinstance(found, dict):
        return []
    rows = []
    for key in STRUCTURE_KEYS:
        value = found.get(key)
        if isinstance(value, bool):
            text, present = t("structure.value.present" if value else "structure.value.absent"), value
        elif value in ("absent", "typical", "atypical"):
            text, present = t(f"structure.value.{value}"), value != "absent"
        else:
            continue
        rows.append({"key": key, "name": t(f"structure.{key}.name"), "value": text,
                     "found": "yes" if present else "no", "explain": t(f"structure.{key}.explain")})
    return rows


def set_name(key: str | None, t: Translate) -> str:
    """A readable, translated name of an evaluated set (``set.<key>``), else the key itself."""
    text = t(f"set.{key}")
    return key or "" if text == f"set.{key}" else text


def advice_key(risk: dict[str, Any]) -> str:
    """Translation key of the advice under the headline.

    ``unknown`` has three texts: image problems (retake the photo), the untrained
    placeholder model (a model that cannot judge), or a picture unlike the images the model
    was measured on (its number is shown but does not reassure).
    """
    level = risk.get("level", "unknown")
    blocking = risk.get("blocking_warnings", [])
    if level == "unknown" and not risk.get("quality_limited") and UNTRAINED in blocking:
        return "result.advice.unknown_model"
    if level == "unknown" and not risk.get("quality_limited") and UNFAMILIAR in blocking:
        return "result.advice.unknown_unfamiliar"
    return f"result.advice.{level}"


def unfamiliar_note(risk: dict[str, Any]) -> str | None:
    """Translation key of the note under a suspicious level whose picture is unlike the images
    the model's numbers were measured on (the level stands); None otherwise."""
    if UNFAMILIAR in risk.get("blocking_warnings", []) and risk.get("level") in ("moderate", "high"):
        return "result.unfamiliar_suspicious"
    return None


def driver(risk: dict[str, Any], lesion: dict[str, Any] | None) -> tuple[str, dict[str, str]] | None:
    """What drove the level, as ``(translation key, values)``: the model, the dermoscopy score
    (TDS), both, or the two disagreeing; None when there is no level to explain (out of scope,
    cannot judge)."""
    level = risk.get("level")
    if level not in ("low", "moderate", "high"):
        return None
    band = risk.get("tds_band")
    tds = number((lesion or {}).get("tds"))
    if tds is None or band is None:
        return "result.driver.model_only_no_lesion", {}
    values = {"tds": _fmt(tds)}
    if any(str(r).startswith("tds_") for r in risk.get("reasons", [])):
        return "result.driver.tds_raised", values
    model_suspicious = risk.get("model_level") in ("moderate", "high")
    tds_suspicious = TDS_BAND_STEPS.get(band, 0) > 0
    if model_suspicious and tds_suspicious:
        return "result.driver.both_suspicious", values
    if model_suspicious:
        return "result.driver.model_not_tds", values
    if tds_suspicious:  # low level although the TDS band is suspicious: cannot happen with the rule
        return "result.driver.tds_raised", values
    return "result.driver.both_low", values



def number_text(lesion: dict[str, Any], key: str) -> str:
    """A lesion feature's score as a short number (``—`` when absent)."""
    return _fmt(feature_value(lesion or {}, key))


def diameter_text(lesion: dict[str, Any] | None) -> str:
    """The diameter in mm when the photo had a scale (``12.3 mm``), else in pixels (``240 px``)."""
    mm, px = number((lesion or {}).get("diameter_mm")), number((lesion or {}).get("diameter_px"))
    if mm is not None:
        return f"{mm:.1f} mm"
    return f"{px:.0f} px" if px is not None else "—"


@lru_cache(maxsize=1)
def measurement_bands() -> dict[str, float]:
    """How much each measurement moves when the same spot is photographed again (95th percentile of
    the test-retest changes, ``measurement_noise.json``, written by ``benchmarks/test_retest.py``;
    ``diameter_relative`` is a share of the diameter). Empty when the file is missing."""
    path = Path(__file__).with_name("measurement_noise.json")
    try:
        return {k: float(v) for k, v in json.loads(path.read_text(encoding="utf-8"))["bands"].items()}
    except (OSError, KeyError, ValueError, TypeError):
        return {}


def compare_rows(left: dict[str, Any], right: dict[str, Any], t: Translate,
                 left_probability: float, right_probability: float) -> list[dict[str, str]]:
    """Rows ``{"name", "left", "right", "change", "direction"}`` for two analyses (old, new).

    ``direction`` is ``up`` / ``down`` / ``same`` / ``na``; for every row here a rise
    means more suspicious. A diameter known only in pixels is not compared: its row has
    ``"note"``, the sentence saying why.
    """
    bands = measurement_bands()

    def row(name: str, a: float | None, b: float | None, fmt, change_fmt, band: float = 0.0) -> dict[str, str]:
        if a is None or b is None:
            return {"name": name, "left": fmt(a), "right": fmt(b), "change": "—", "direction": "na"}
        diff = b - a
        if abs(diff) <= band + 1e-9:  # inside what re-photographing the same spot changes
            change = change_fmt(diff) if abs(diff) < 1e-9 else f"{change_fmt(diff)} ({t('compare.within_noise')})"
            return {"name": name, "left": fmt(a), "right": fmt(b), "change": change, "direction": "same"}
        return {"name": name, "left": fmt(a), "right": fmt(b), "change": change_fmt(diff),
                "direction": "up" if diff > 0 else "down"}

    rows = [row(t("result.probability.short"), left_probability, right_probability,
                lambda v: percent(v) if v is not None else "—",
                lambda d: f"{100 * d:+.0f} {t('compare.points')}", bands.get("probability", 0.0))]
    la, lb = left.get("lesion") or {}, right.get("lesion") or {}
    for key, stem in FEATURE_ROWS:
        if key == "diameter":
            unit = "mm" if number(la.get("diameter_mm")) is not None and number(lb.get("diameter_mm")) is not None else "px"
            a, b = number(la.get(f"diameter_{unit}")), number(lb.get(f"diameter_{unit}"))
            if a is None and b is None:
                continue
            name = t(f"{stem}.name") + f" ({unit})"
            if unit == "px":  # each photo has its own scale: pixels say nothing about a change
                rows.append({"name": name, "left": _fmt(a, 1), "right": _fmt(b, 1), "change": "—",
                             "direction": "na", "note": t("compare.diameter_px")})
                continue
            band = bands.get("diameter_relative", 0.0) * max(abs(a or 0.0), abs(b or 0.0))
            rows.append(row(name, a, b, lambda v: _fmt(v, 1), lambda d: f"{d:+.1f}", band))
            continue
        a, b = feature_value(la, key), feature_value(lb, key)
        if a is None and b is None:
            continue
        rows.append(row(t(f"{stem}.name"), a, b, _fmt, lambda d: f"{d:+.2f}".rstrip("0").rstrip("."),
                        bands.get(key, 0.0)))
    levels = {"left": left.get("risk", {}).get("level", "unknown"), "right": right.get("risk", {}).get("level", "unknown")}
    order = {"low": 0, "moderate": 1, "high": 2}
    direction = "na"
    if levels["left"] in order and levels["right"] in order:
        d = order[levels["right"]] - order[levels["left"]]
        direction = "same" if d == 0 else ("up" if d > 0 else "down")
    rows.insert(1, {"name": t("result.risk_level"), "left": t(f"level.{levels['left']}"),
                    "right": t(f"level.{levels['right']}"), "change": {"up": "↑", "down": "↓", "same": "="}.get(direction, "—"),
                    "direction": direction})
    return rows
