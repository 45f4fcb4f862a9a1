"""Binary classification metrics for melanoma screening: arrays in, numbers out.

Conventions used everywhere in MelaScan:

- ``y_true`` holds class ids, benign = 0, malignant = 1 (the positive class).
- ``prob`` is P(malignant) in [0, 1].
- A case is called malignant when ``prob >= threshold``.

scikit-learn computes every metric it has (accuracy, recall, precision, F1,
ROC-AUC, average precision, Brier score, confusion matrix, ROC curve); this
module adds specificity, expected calibration error, seeded bootstrap confidence
intervals and the sensitivity/specificity operating points read off the ROC curve.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn import metrics as skm

#: Bootstrap settings used by :func:`compute_metrics` unless told otherwise.
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
#: Equal-width probability bins for the expected calibration error.
ECE_BINS = 10


def check_inputs(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs: 1-D, same length, labels in {0, 1}, prob in [0, 1]."""
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but prob has {p.size}")
    if y.size == 0:
        raise ValueError("no samples")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 (benign) and 1 (malignant)")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("prob must be finite probabilities in [0, 1]")
    return y, p


def has_both_classes(y: np.ndarray) -> bool:
    return bool(y.min() == 0 and y.max() == 1)


def predict_labels(prob, threshold: float) -> np.ndarray:
    """Class ids from probabilities: malignant (1) when ``prob >= threshold``."""
    return (np.asarray(prob, dtype=float) >= threshold).astype(int)


# --- threshold metrics ----------------------------------------------------------------


def confusion(y_true, y_pred) -> dict[str, int]:
    """Confusion counts ``{"tn", "fp", "fn", "tp"}`` (positive = malignant)."""
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def accuracy(y_true, y_pred) -> float:
    return float(skm.accuracy_score(y_true, y_pred))


def sensitivity(y_true, y_pred) -> float:
    """Recall of the malignant class, TP / (TP + FN); NaN when there is no malignant case."""
    if not np.any(np.asarray(y_true) == 1):
        return float("nan")
    return float(skm.recall_score(y_true, y_pred, pos_label=1, zero_division=0))


def specificity(y_true, y_pred) -> float:
    """Recall of the benign class, TN / (TN + FP); NaN when there is no benign case."""
    if not np.any(np.asarray(y_true) == 0):
        return float("nan")
    return float(skm.recall_score(y_true, y_pred, pos_label=0, zero_division=0))


def precision(y_true, y_pred) -> float:
    """Positive predictive value, TP / (TP + FP); 0 when nothing is called malignant."""
    return float(skm.precision_score(y_true, y_pred, pos_label=1, zero_division=0))


def f1(y_true, y_pred) -> float:
    """Harmonic mean of precision and sensitivity for the malignant class."""
    return float(skm.f1_score(y_true, y_pred, pos_label=1, zero_division=0))


# --- probability / ranking metrics -------------------------------------------------------


def roc_auc(y_true, prob) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, p = check_inputs(y_true, prob)
    return float(skm.roc_auc_score(y, p)) if has_both_classes(y) else float("nan")


def per_source_roc_auc(y_true, prob, sources) -> dict[str, float]:
    """ROC-AUC within each source (``{source: auc}``, sorted) and ``"mean"``, their mean: the
    number the project's candidate rules compare, each source counting the same."""
    y, p = check_inputs(y_true, prob)
    sources = np.asarray(sources)
    out = {str(s): roc_auc(y[sources == s], p[sources == s]) for s in np.unique(sources)}
    out["mean"] = float(np.mean(list(out.values())))
    return out


def benign_groups(y_true, prob, groups, thresholds: dict[str, float]) -> dict[str, dict]:
    """For each group of benign images (a diagnosis: ``nv``, ``bkl``...): its size, the ROC-AUC of
    every malignant image against that group only, and the share called malignant at each
    threshold (``{name: threshold}``). Shows which look-alike a model confuses with melanoma."""
    y, p = check_inputs(y_true, prob)
    groups = np.asarray(groups)
    malignant = y == 1
    out = {}
    for g in np.unique(groups[~malignant]):
        members = (groups == g) & ~malignant
        keep = members | malignant
        out[str(g)] = {"n": int(members.sum()), "roc_auc_vs_malignant": roc_auc(y[keep], p[keep]),
                       "called_malignant": {k: float(np.mean(predict_labels(p[members], t)))
                                            for k, t in thresholds.items()}}
    return out


def pr_auc(y_true, prob) -> float:
    """Area under the precision-recall curve as average precision (step-wise, no
    interpolation); NaN without a malignant case."""
    y, p = check_inputs(y_true, prob)
    return float(skm.average_precision_score(y, p)) if y.max() == 1 else float("nan")


def brier(y_true, prob) -> float:
    """Mean squared error between ``prob`` and the 0/1 label (0 is perfect, 0.25 is a
    constant 0.5)."""
    y, p = check_inputs(y_true, prob)
    return float(skm.brier_score_loss(y, p, labels=[0, 1]))


def expected_calibration_error(y_true, prob, n_bins: int = ECE_BINS) -> float:
    """ECE of P(malignant): ``sum_b (n_b / N) * |mean(y in b) - mean(prob in b)|`` over
    ``n_bins`` equal-width bins of [0, 1] (the bins of the reliability diagram);
    the last bin includes 1.0, empty bins are skipped."""
    y, p = check_inputs(y_true, prob)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(ece)


# --- operating points on the ROC curve --------------------------------------------------


def roc_points(y_true, prob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ROC point (no point dropped); the ``inf`` threshold (nothing called
    malignant) is replaced by the first value above 1 so thresholds stay finite."""
    y, p = check_inputs(y_true, prob)
    fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=False)
    thr = np.where(np.isinf(thr), np.nextafter(1.0, 2.0), thr)
    return fpr, tpr, thr


def sensitivity_at_specificity(y_true, prob, min_specificity: float) -> tuple[float, float]:
    """``(sensitivity, threshold)`` of the best **achievable** operating point whose
    specificity is at least ``min_specificity``.

    Conservative: no interpolation between ROC points, so the returned pair is what the
    threshold really gives on these data. NaNs when only one class is present.
    """
    y, _ = check_inputs(y_true, prob)
    if not has_both_classes(y):
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_points(y_true, prob)
    ok = (1.0 - fpr) >= min_specificity - 1e-12
    i = np.flatnonzero(ok)[np.argmax(tpr[ok])]  # the inf threshold (fpr=0) is always ok
    return float(tpr[i]), float(thr[i])


def specificity_at_sensitivity(y_true, prob, min_sensitivity: float) -> tuple[float, float]:
    """``(specificity, threshold)`` of the best achievable operating point whose
    sensitivity is at least ``min_sensitivity`` (conservative, as above). Ties on
    specificity go to the highest threshold."""
    y, _ = check_inputs(y_true, prob)
    if not has_both_classes(y):
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_points(y_true, prob)
    ok = tpr >= min_sensitivity - 1e-12
    i = np.flatnonzero(ok)[np.argmax(1.0 - fpr[ok])]  # the last point (tpr=1) is always ok
    return float(1.0 - fpr[i]), float(thr[i])


# --- bootstrap ----------------------------------------------------------------------------


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    prob,
    *,
    n_resamples: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric(y, prob)``.

    Resampling is stratified (benign and malignant cases are resampled separately, so
    each resample keeps the class counts, as pROC does for AUC); it is seeded, so the
    same inputs always give the same interval. Returns NaNs when a class is missing.
    """
    y, p = check_inputs(y_true, prob)
    if not has_both_classes(y):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    neg, pos = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    values = np.empty(n_resamples)
    for k in range(n_resamples):
        idx = np.concatenate([rng.choice(neg, neg.size), rng.choice(pos, pos.size)])
        values[k] = metric(y[idx], p[idx])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


# --- gathered -----------------------------------------------------------------------------


def threshold_metrics(
    y_true,
    prob,
    threshold: float,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> dict:
    """Metrics of the decisions ``prob >= threshold``, with bootstrap CIs for
    sensitivity and specificity (``n_bootstrap=0`` skips them)."""
    y, p = check_inputs(y_true, prob)
    pred = predict_labels(p, threshold)
    out = {
        "threshold": float(threshold),
        "accuracy": accuracy(y, pred),
        "sensitivity": sensitivity(y, pred),
        "specificity": specificity(y, pred),
        "precision": precision(y, pred),
        "f1": f1(y, pred),
        "confusion": confusion(y, pred),
    }
    if n_bootstrap:
        # Stratified resampling keeps class counts, so sens/spec are simple means here.
        def sens(yy, pp):
            return float(np.mean(pp[yy == 1] >= threshold))

        def spec(yy, pp):
            return float(np.mean(pp[yy == 0] < threshold))

        out["sensitivity_ci"] = list(bootstrap_ci(sens, y, p, n_resamples=n_bootstrap, seed=seed))
        out["specificity_ci"] = list(bootstrap_ci(spec, y, p, n_resamples=n_bootstrap, seed=seed))
    return out


def ranking_metrics(
    y_true,
    prob,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    ece_bins: int = ECE_BINS,
) -> dict:
    """Threshold-free metrics: ROC-AUC (+ bootstrap CI), PR-AUC, Brier, ECE and the
    ROC operating points sens@90 % spec, sens@95 % spec and spec@95 % sens."""
    y, p = check_inputs(y_true, prob)
    s90, t_s90 = sensitivity_at_specificity(y, p, 0.90)
    s95, t_s95 = sensitivity_at_specificity(y, p, 0.95)
    sp95, t_sp95 = specificity_at_sensitivity(y, p, 0.95)
    out = {
        "n": int(y.size),
        "n_malignant": int(y.sum()),
        "n_benign": int(y.size - y.sum()),
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p, ece_bins),
        "ece_bins": int(ece_bins),
        "sens_at_spec90": s90,
        "sens_at_spec90_threshold": t_s90,
        "sens_at_spec95": s95,
        "sens_at_spec95_threshold": t_s95,
        "spec_at_sens95": sp95,
        "spec_at_sens95_threshold": t_sp95,
    }
    if n_bootstrap:
        auc = lambda yy, pp: float(skm.roc_auc_score(yy, pp))  # noqa: E731
        out["roc_auc_ci"] = list(bootstrap_ci(auc, y, p, n_resamples=n_bootstrap, seed=seed))
    return out


def compute_metrics(
    y_true,
    prob,
    threshold: float = 0.5,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    ece_bins: int = ECE_BINS,
) -> dict:
    """Every metric of this module in one flat dict (see ``ranking_metrics`` and
    ``threshold_metrics``). Values are unrounded floats; reports print 4 decimals."""
    return {
        **ranking_metrics(y_true, prob, n_bootstrap=n_bootstrap, seed=seed, ece_bins=ece_bins),
        **threshold_metrics(y_true, prob, threshold, n_bootstrap=n_bootstrap, seed=seed),
    }
