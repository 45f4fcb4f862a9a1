"""Paired comparisons of two models scored on the same images.

``delong_test`` compares two ROC-AUCs with DeLong's test (DeLong, DeLong & Clarke-Pearson,
1988), using the midrank formulation of Sun & Xu (2014): the AUC of each model is the mean of
its per-image "structural components", and their covariance over the positive and the negative
images gives the variance of the AUC difference. ``mcnemar_test`` compares two models' decisions
at one threshold with McNemar's exact test on the discordant images. ``delong_test_by_group``
compares the mean over sources of the per-source ROC-AUC, the number the candidate rules use.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest, norm, rankdata


def _labels_and_scores(y_true, *scores) -> tuple[np.ndarray, list[np.ndarray]]:
    y = np.asarray(y_true).astype(int)
    arrays = [np.asarray(s, dtype=np.float64) for s in scores]
    if any(a.shape != y.shape for a in arrays):
        raise ValueError("labels and scores must have the same length")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("both classes are needed")
    return y, arrays


def structural_components(y_true, score) -> tuple[np.ndarray, np.ndarray]:
    """``(V10, V01)``: for each positive image the share of negatives it outranks (ties
    count half), and for each negative the share of positives that outrank it. The mean
    of either is the ROC-AUC."""
    y, (s,) = _labels_and_scores(y_true, score)
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    all_ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - rankdata(pos)) / n
    v01 = 1.0 - (all_ranks[m:] - rankdata(neg)) / m
    return v10, v01


def delong_test(y_true, score_a, score_b) -> dict:
    """DeLong's test of ``AUC(a) - AUC(b)`` on the same images.

    Returns ``auc_a``, ``auc_b``, ``difference`` (a - b), its ``std_error``, ``z`` and the
    two-sided ``p_value`` (1.0 when the two scores rank every pair alike).
    """
    y, (a, b) = _labels_and_scores(y_true, score_a, score_b)
    (a10, a01), (b10, b01) = structural_components(y, a), structural_components(y, b)
    m, n = a10.size, a01.size
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    cov = s10 / m + s01 / n
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    auc_a, auc_b = float(a10.mean()), float(b10.mean())
    difference = auc_a - auc_b
    if variance <= 1e-15:
        z, p = 0.0, 1.0
    else:
        z = difference / np.sqrt(variance)
        p = float(2 * norm.sf(abs(z)))
    return {"auc_a": auc_a, "auc_b": auc_b, "difference": difference,
            "std_error": float(np.sqrt(max(variance, 0.0))), "z": float(z), "p_value": p}


def delong_test_by_group(y_true, score_a, score_b, groups) -> dict:
    """DeLong's test of the difference in the *mean over groups* of the per-group ROC-AUC (the
    candidate rules' "mean over sources"), on the same images.

    Each group (a source) is compared with ``delong_test``; groups hold disjoint images, so their
    differences are independent and the mean's variance is ``sum(variance_g) / G**2``. Returns
    ``difference`` (a - b), ``std_error``, ``ci95`` (normal), ``z``, the two-sided ``p_value`` and
    ``by_group`` (each group's ``delong_test``). Tells how large a difference a validation set can
    resolve before a rule reads anything into it.
    """
    y = np.asarray(y_true).astype(int)
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError("labels and groups must have the same length")
    a, b = np.asarray(score_a, dtype=np.float64), np.asarray(score_b, dtype=np.float64)
    by_group = {str(g): delong_test(y[groups == g], a[groups == g], b[groups == g]) for g in np.unique(groups)}
    difference = float(np.mean([r["difference"] for r in by_group.values()]))
    std_error = float(np.sqrt(sum(r["std_error"] ** 2 for r in by_group.values())) / len(by_group))
    if std_error <= 1e-12:
        z, p = 0.0, 1.0
    else:
        z = difference / std_error
        p = float(2 * norm.sf(abs(z)))
    return {"difference": difference, "std_error": std_error,
            "ci95": [difference - 1.959964 * std_error, difference + 1.959964 * std_error],
            "z": float(z), "p_value": p, "by_group": by_group}


def mcnemar_test(y_true, predicted_a, predicted_b) -> dict:
    """McNemar's exact test of two models' decisions (0/1) on the same images.

    ``only_a_right`` / ``only_b_right`` count the discordant images; ``p_value`` is the
    two-sided exact binomial probability of a split at least that uneven (1.0 when no
    image is discordant).
    """
    y = np.asarray(y_true).astype(int)
    a, b = np.asarray(predicted_a).astype(int), np.asarray(predicted_b).astype(int)
    if not (a.shape == b.shape == y.shape):
        raise ValueError("labels and predictions must have the same length")
    right_a, right_b = a == y, b == y
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": p}
