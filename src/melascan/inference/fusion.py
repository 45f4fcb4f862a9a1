"""Fusion of the network with the lesion measurements: one small calibrated model.

On images from other dermatoscopes the classical lesion measurements (asymmetry,
border, colours...) rank melanomas about as well as a network trained on a few
sources, and their errors differ; a logistic regression on both is fitted on the
validation images (source-balanced weights) and shipped in the model card
(``card["fusion"]``) when it passes the leave-one-source-out check of
``melascan.export.heads``. ``predict``, ``analyze`` and the web app all apply it through
``Classifier.fuse``.

Arrays in, numbers out; the inputs are the network's logit difference and
``LesionAnalysis.to_dict()`` of ``melascan.lesion``. Without a lesion the lesion
inputs take their validation means and ``lesion_found`` is 0.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from melascan.errors import ModelError

COLOR_KEYS = ("white", "red", "light_brown", "dark_brown", "blue_gray", "black")
STRUCTURE_KEYS = ("pigment_network", "dots_globules", "streaks", "regression", "blue_whitish_veil")
#: Inputs of the fusion model, in order.
FEATURES = (
    "cnn_logit", "lesion_found", "asymmetry", "border", "n_colors", "compactness", "fractal_dimension",
    "lesion_area_fraction", *(f"color_{c}" for c in COLOR_KEYS), "shape_asymmetry", "color_asymmetry_de",
    "tds", "seven_point", *(f"structure_{k}" for k in STRUCTURE_KEYS),
)


def lesion_inputs(logit: float, lesion: dict | None) -> list[float]:
    """The fusion input vector (``FEATURES`` order; NaN where the lesion gives nothing)."""
    nan = math.nan
    if not lesion or not lesion.get("lesion_found"):
        return [float(logit), 0.0] + [nan] * (len(FEATURES) - 2)
    size = lesion.get("image_size") or {}
    area = float(size.get("height", 0) * size.get("width", 0)) or nan
    fractions = lesion.get("color_fractions") or {}
    axes = lesion.get("asymmetry_axes") or {}
    scores = lesion.get("structure_scores") or {}

    def num(value: Any) -> float:
        return nan if value is None else float(value)

    return [
        float(logit), 1.0, num(lesion.get("asymmetry")), num(lesion.get("border")),
        float(len(lesion.get("colors") or [])), num(lesion.get("compactness")), num(lesion.get("fractal_dimension")),
        num(lesion.get("area_px")) / area, *(num(fractions.get(c, 0.0)) for c in COLOR_KEYS),
        max(num(axes.get("shape_major")), num(axes.get("shape_minor"))),
        max(num(axes.get("color_major_de")), num(axes.get("color_minor_de"))),
        num(lesion.get("tds")), num(lesion.get("seven_point")), *(num(scores.get(k)) for k in STRUCTURE_KEYS),
    ]


def fit_fusion(inputs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None, *,
               c: float = 0.5) -> dict:
    """Fit the fusion model on ``(N, len(FEATURES))`` inputs; returns the card's ``fusion`` dict."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(inputs, dtype=np.float64)
    fill = np.nanmean(x, axis=0)
    fill = np.where(np.isnan(fill), 0.0, fill)
    x = np.where(np.isnan(x), fill, x)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, labels, sample_weight=weights)
    return {
        "method": f"logistic regression (L2, C={c}) on standardised inputs, fitted on validation images "
                  "with source-balanced weights",
        "features": list(FEATURES),
        "fill": fill.tolist(), "mean": mean.tolist(), "scale": scale.tolist(),
        "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0]),
    }


def check_fusion(fusion: dict) -> dict:
    """Raise ``ModelError`` unless ``fusion`` is a usable card block."""
    try:
        n = len(fusion["features"])
        ok = list(fusion["features"]) == list(FEATURES) and all(
            len(fusion[k]) == n for k in ("fill", "mean", "scale", "coef"))
        float(fusion["intercept"])
        ok = ok and all(0.0 <= float(fusion["thresholds"][k]) <= 1.0 for k in ("balanced", "screening"))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ModelError(f"model card: fusion block does not match this version's inputs {list(FEATURES)}")
    return fusion


def fused_logit(fusion: dict, inputs: Sequence[float] | np.ndarray) -> np.ndarray:
    """The fusion model's log-odds for one input vector or an ``(N, F)`` array."""
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    x = np.where(np.isnan(x), np.asarray(fusion["fill"]), x)
    z = (x - np.asarray(fusion["mean"])) / np.asarray(fusion["scale"])
    return z @ np.asarray(fusion["coef"]) + float(fusion["intercept"])


def fused_probability(fusion: dict, inputs: Sequence[float] | np.ndarray) -> np.ndarray:
    """P(melanoma) of the fusion model (already calibrated by the logistic fit)."""
    return 0.5 * (1.0 + np.tanh(0.5 * fused_logit(fusion, inputs)))
