"""Choices made with an external set (a model, a site's own thresholds), and what they are worth.

A model chosen by its ROC-AUC on an external set has an optimistic ROC-AUC on that set: the
choice has seen the labels. ``cross_validated_selection`` measures the choice itself: the set is
split into stratified folds; for each fold, the candidate with the highest ROC-AUC on the other
folds is chosen and scored on the held-out fold only. Over ``n_repeats`` random splits it returns
how often each candidate was chosen and the held-out ROC-AUC of the choices (the mean of the
per-fold ROC-AUCs, never pooled across folds: different candidates' scores are not on one scale).

``cross_validated_thresholds`` asks the same of decision thresholds: a site that fits the
balanced and screening thresholds on its own labelled images (the rules of
``evaluation.calibration``), scored on images the fit did not see, against the model's own
thresholds on the same images.

Arrays in, numbers out.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from melascan.evaluation import metrics as M
from melascan.evaluation.calibration import SCREENING_SENSITIVITY, balanced_threshold, screening_threshold
from melascan.evaluation.metrics import roc_auc


def cross_validated_selection(y_true, scores: dict[str, np.ndarray], *, n_folds: int = 2,
                              n_repeats: int = 200, seed: int = 0) -> dict:
    """Nested choice of the highest-ROC-AUC candidate, scored out of fold.

    ``scores`` maps candidate name -> one malignant probability per image, all on the same
    images as ``y_true``. Ties go to the candidate listed first. Returns ``chosen`` (name ->
    share of fold choices), ``held_out_auc`` (its mean over repeats and ``split_range``, the 2.5
    and 97.5 percentiles over repeats, of the repeat's mean per-fold ROC-AUC of the chosen
    candidates: how much the random split moves it, not a confidence interval), ``always`` (the same held-out
    measure for each candidate chosen every time: the reference without a choice) and
    ``full_set_auc`` (each candidate's ROC-AUC on the whole set, optimistic for a chosen one).
    """
    y = np.asarray(y_true).astype(int)
    names = list(scores)
    arrays = {name: np.asarray(scores[name], dtype=np.float64) for name in names}
    if not names:
        raise ValueError("no candidates")
    if any(a.shape != y.shape for a in arrays.values()):
        raise ValueError("every candidate needs one score per label")
    if min(np.sum(y == 1), np.sum(y == 0)) < n_folds:
        raise ValueError(f"each class needs at least {n_folds} images for {n_folds} folds")
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(names, 0)
    chosen_auc, always_auc = [], {name: [] for name in names}
    for _ in range(n_repeats):
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=int(rng.integers(2**31)))
        fold_auc, fold_always = [], {name: [] for name in names}
        for select_idx, held_idx in folds.split(np.zeros_like(y), y):
            best = max(names, key=lambda n: (roc_auc(y[select_idx], arrays[n][select_idx]), -names.index(n)))
            counts[best] += 1
            fold_auc.append(roc_auc(y[held_idx], arrays[best][held_idx]))
            for name in names:
                fold_always[name].append(roc_auc(y[held_idx], arrays[name][held_idx]))
        chosen_auc.append(float(np.mean(fold_auc)))
        for name in names:
            always_auc[name].append(float(np.mean(fold_always[name])))

    def summary(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)),
                "split_range": [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]}

    total = n_folds * n_repeats
    return {
        "n_folds": n_folds, "n_repeats": n_repeats, "seed": seed,
        "chosen": {name: counts[name] / total for name in names},
        "held_out_auc": summary(chosen_auc),
        "always": {name: summary(always_auc[name]) for name in names},
        "full_set_auc": {name: roc_auc(y, arrays[name]) for name in names},
    }


def cross_validated_thresholds(y_true, prob, model_thresholds: dict[str, float], *, groups=None,
                               n_folds: int = 2, n_repeats: int = 200, seed: int = 0,
                               min_sensitivity: float = SCREENING_SENSITIVITY) -> dict:
    """Sensitivity and specificity of thresholds fitted on the set itself, out of fold.

    For each of ``n_repeats`` random stratified splits into ``n_folds`` (with ``groups``, e.g.
    lesion ids, no group straddles two folds), the ``balanced`` and ``screening`` thresholds are
    fitted on the other folds and applied to the held-out fold; every image is decided once per
    repeat. Returns, per threshold name, ``site``: the ``mean`` and ``split_range`` (2.5 and 97.5
    percentiles over repeats) of ``sensitivity`` and ``specificity``, and the fitted thresholds'
    range over folds (``site_threshold``); ``model``: the same rates at ``model_thresholds`` (name
    -> the model's own threshold, fitted elsewhere), on all images."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=np.float64)
    if p.shape != y.shape:
        raise ValueError("one probability per label")
    if min(np.sum(y == 1), np.sum(y == 0)) < n_folds:
        raise ValueError(f"each class needs at least {n_folds} images for {n_folds} folds")
    fitters = {"balanced": lambda yy, pp: balanced_threshold(yy, pp),
               "screening": lambda yy, pp: screening_threshold(yy, pp, min_sensitivity)}
    rng = np.random.default_rng(seed)
    rates = {name: [] for name in fitters}
    fitted = {name: [] for name in fitters}
    for _ in range(n_repeats):
        state = int(rng.integers(2**31))
        folds = (StratifiedKFold(n_folds, shuffle=True, random_state=state) if groups is None
                 else StratifiedGroupKFold(n_folds, shuffle=True, random_state=state))
        site_calls = {name: np.zeros(y.size, bool) for name in fitters}
        for fit_idx, held_idx in folds.split(np.zeros_like(y), y, groups):
            for name, fit in fitters.items():
                threshold = fit(y[fit_idx], p[fit_idx])
                fitted[name].append(threshold)
                site_calls[name][held_idx] = p[held_idx] >= threshold
        for name in fitters:
            rates[name].append(_rates(y, site_calls[name]))

    def summary(pairs: list[tuple[float, float]]) -> dict:
        a = np.asarray(pairs)
        return {key: {"mean": float(a[:, i].mean()),
                      "split_range": [float(np.percentile(a[:, i], 2.5)), float(np.percentile(a[:, i], 97.5))]}
                for i, key in enumerate(("sensitivity", "specificity"))}

    return {
        "n_folds": n_folds, "n_repeats": n_repeats, "seed": seed, "n": int(y.size), "n_malignant": int(y.sum()),
        **{name: {"model_threshold": float(model_thresholds[name]),
                  "model": dict(zip(("sensitivity", "specificity"), _rates(y, p >= model_thresholds[name]))),
                  "site": summary(rates[name]),
                  "site_threshold": [float(np.min(fitted[name])), float(np.max(fitted[name]))]}
           for name in fitters},
    }


def _rates(y: np.ndarray, called_malignant: np.ndarray) -> tuple[float, float]:
    calls = called_malignant.astype(int)
    return M.sensitivity(y, calls), M.specificity(y, calls)
