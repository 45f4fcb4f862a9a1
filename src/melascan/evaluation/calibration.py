"""Temperature scaling and decision thresholds, fitted on the validation split.

A model outputs two logits (benign, malignant). The calibrated probability is
``P(malignant) = softmax(logits / T)[:, 1]`` with one temperature ``T > 0`` chosen
to minimise the negative log-likelihood on validation (Guo et al., 2017). ``T``
rescales confidence but never changes the ranking, so AUC is unchanged.

Two thresholds are then chosen on the *calibrated* validation probabilities
(a case is called malignant when ``probability >= threshold``):

- ``balanced``: maximises Youden's J = sensitivity + specificity - 1 (i.e. balanced
  accuracy), which does not depend on the class ratio of the validation split;
- ``screening``: the highest threshold whose validation sensitivity is >= 95 %
  (missing a melanoma costs more than an extra biopsy).

Both are stored with the run in ``calibration.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from melascan.evaluation import metrics as M
from melascan.inference.classifier import calibrated_probability

#: Named operating points; "0.5" is the uncalibrated-style default threshold.
OPERATING_POINTS = ("0.5", "balanced", "screening")

#: Sensitivity the screening threshold must keep on validation.
SCREENING_SENSITIVITY = 0.95
#: Search range for T (log-space bounded search).
T_MIN, T_MAX = 0.05, 20.0

BALANCED_RULE = "maximises Youden's J = sensitivity + specificity - 1 on validation (highest threshold on ties)"
SCREENING_RULE = "highest threshold with validation sensitivity >= {:.0%}"
SOURCE_BALANCED = ", each source counting the same (mean of the sources' J; sensitivity kept in every source)"


def _logits(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"expected logits of shape (N, 2), got {z.shape}")
    return z


def probability(logits, temperature: float = 1.0) -> np.ndarray:
    """P(malignant) = ``softmax(logits / temperature)[:, 1]`` for ``(N, 2)`` logits (the
    runtime's ``calibrated_probability``, with a shape check)."""
    return calibrated_probability(_logits(logits), temperature)


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / T)``."""
    z = _logits(logits)
    y = np.asarray(y_true).astype(int)
    return float(-np.mean(log_softmax(z / float(temperature), axis=1)[np.arange(y.size), y]))


def fit_temperature(logits, y_true) -> float:
    """The temperature in [``T_MIN``, ``T_MAX``] that minimises validation NLL
    (bounded 1-D search over log T)."""
    z = _logits(logits)
    y = np.asarray(y_true).astype(int)
    if z.shape[0] != y.size or y.size == 0:
        raise ValueError("logits and labels must be non-empty and of the same length")
    res = minimize_scalar(
        lambda log_t: nll(z, y, np.exp(log_t)),
        bounds=(np.log(T_MIN), np.log(T_MAX)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(res.x))


def before_after(y_true, logits, temperature: float) -> dict:
    """NLL, ECE and Brier score of ``logits`` at T = 1 (before) and at ``temperature`` (after)."""
    y = np.asarray(y_true).astype(int)
    p_raw, p_cal = probability(logits, 1.0), probability(logits, temperature)
    return {
        "nll_before": nll(logits, y, 1.0),
        "nll_after": nll(logits, y, temperature),
        "ece_before": M.expected_calibration_error(y, p_raw),
        "ece_after": M.expected_calibration_error(y, p_cal),
        "brier_before": M.brier(y, p_raw),
        "brier_after": M.brier(y, p_cal),
    }


def balanced_threshold(y_true, prob, groups=None) -> float:
    """The threshold maximising Youden's J on these data (highest threshold on ties).

    With ``groups`` (e.g. each image's source), the threshold maximising the mean of the
    groups' Youden's J, so that each group counts the same whatever its size (groups with one
    class only are left out)."""
    y, p = M.check_inputs(y_true, prob)
    if not M.has_both_classes(y):
        raise ValueError("the balanced threshold needs both classes")
    if groups is None:
        fpr, tpr, thr = M.roc_points(y, p)
        j = tpr - fpr
        j[thr > 1] = -np.inf  # never "call nothing malignant"
        return float(thr[int(np.argmax(j))])
    groups = np.asarray(groups)
    candidates = np.unique(p)
    j = np.zeros(candidates.size)
    used = 0
    for g in np.unique(groups):
        yg, pg = y[groups == g], p[groups == g]
        if not M.has_both_classes(yg):
            continue
        pos, neg = np.sort(pg[yg == 1]), np.sort(pg[yg == 0])
        tpr = 1 - np.searchsorted(pos, candidates, side="left") / pos.size  # share >= candidate
        fpr = 1 - np.searchsorted(neg, candidates, side="left") / neg.size
        j += tpr - fpr
        used += 1
    if not used:
        raise ValueError("no group has both classes")
    return float(candidates[np.flatnonzero(j == j.max())[-1]])


def screening_threshold(y_true, prob, min_sensitivity: float = SCREENING_SENSITIVITY, groups=None) -> float:
    """The highest threshold that keeps sensitivity >= ``min_sensitivity`` on these data.

    This is the probability of the malignant case ranked at the
    ``ceil(min_sensitivity * n_malignant)``-th highest place. With ``groups``, the highest
    threshold that keeps it in every group with malignant cases (the lowest of theirs).
    """
    y, p = M.check_inputs(y_true, prob)
    if groups is not None:
        groups = np.asarray(groups)
        return min(screening_threshold(y[groups == g], p[groups == g], min_sensitivity)
                   for g in np.unique(groups[y == 1]))
    pos = np.sort(p[y == 1])[::-1]
    if pos.size == 0:
        raise ValueError("the screening threshold needs malignant cases")
    k = int(np.ceil(min_sensitivity * pos.size - 1e-9))  # how many must be caught
    return float(pos[max(k, 1) - 1])


def fit_calibration(val_logits, val_labels, *, groups=None,
                    min_sensitivity: float = SCREENING_SENSITIVITY) -> dict:
    """Fit ``T`` and both thresholds on validation; returns the ``calibration.json`` dict,
    including validation metrics before/after scaling and at each threshold.

    With ``groups`` (each validation image's source) holding more than one value, both
    thresholds count each group the same (``balanced_threshold``/``screening_threshold``
    with ``groups``), as the fusion's thresholds do."""
    y = np.asarray(val_labels).astype(int)
    t = fit_temperature(val_logits, y)
    p_cal = probability(val_logits, t)
    if groups is not None and len(set(np.asarray(groups).tolist())) < 2:
        groups = None
    thresholds = {"balanced": balanced_threshold(y, p_cal, groups),
                  "screening": screening_threshold(y, p_cal, min_sensitivity, groups=groups)}
    rule_suffix = "" if groups is None else SOURCE_BALANCED

    def at(thr: float) -> dict:
        m = M.threshold_metrics(y, p_cal, thr, n_bootstrap=0)
        return {k: m[k] for k in ("sensitivity", "specificity", "precision", "f1")}

    return {
        "temperature": t,
        "thresholds": thresholds,
        "rules": {
            "temperature": f"minimises validation NLL of softmax(logits / T), T in [{T_MIN}, {T_MAX}]",
            "balanced": BALANCED_RULE + rule_suffix,
            "screening": SCREENING_RULE.format(min_sensitivity) + rule_suffix,
            "decision": "malignant when calibrated probability >= threshold",
        },
        "validation": {
            "n": int(y.size),
            "n_malignant": int(y.sum()),
            **before_after(y, val_logits, t),
            "at_threshold": {name: at(thr) for name, thr in thresholds.items()},
        },
    }


def save_calibration(path: str | Path, calibration: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(calibration, indent=2) + "\n")
    return path


def load_calibration(path: str | Path) -> dict:
    """Read ``calibration.json`` (at least ``temperature`` and ``thresholds``)."""
    from melascan.errors import DataError

    path = Path(path)
    if path.is_dir():
        path = path / "calibration.json"
    try:
        cal = json.loads(path.read_text())
        float(cal["temperature"]), float(cal["thresholds"]["balanced"]), float(cal["thresholds"]["screening"])
    except FileNotFoundError:
        raise DataError(f"{path} not found: run `melascan evaluate` on the run first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a valid calibration file ({exc})") from None
    return cal
