"""Metrics against scikit-learn and hand calculations (hand-made predictions, fast)."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from melascan.evaluation import metrics as M

# 10 cases, threshold 0.5: TP=4 (0.9, 0.8, 0.7, 0.6), FN=1 (0.4), TN=3 (0.1, 0.2, 0.3), FP=2 (0.55, 0.65)
Y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.1, 0.2, 0.3, 0.55, 0.65])


def test_threshold_metrics_by_hand_and_sklearn():
    m = M.threshold_metrics(Y, P, 0.5, n_bootstrap=0)
    assert m["confusion"] == {"tn": 3, "fp": 2, "fn": 1, "tp": 4}
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["sensitivity"] == pytest.approx(4 / 5)
    assert m["specificity"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(2 * 4 / (2 * 4 + 2 + 1))
    pred = (P >= 0.5).astype(int)
    assert m["f1"] == pytest.approx(skm.f1_score(Y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(Y, pred))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(Y, pred))


def test_threshold_is_inclusive():
    assert M.predict_labels([0.5, 0.4999, 0.6], 0.5).tolist() == [1, 0, 1]


def test_ranking_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.35 * y + 0.65 * rng.random(300), 0, 1)
    assert M.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert M.pr_auc(y, p) == pytest.approx(skm.average_precision_score(y, p))
    assert M.brier(y, p) == pytest.approx(np.mean((p - y) ** 2))


def test_auc_by_hand():
    # pairs (pos, neg): 5 x 5 = 25; pos 0.4 beats negs 0.1, 0.2, 0.3 only; 0.6 loses to 0.65
    wins = sum(pp > pn for pp in P[:5] for pn in P[5:])
    assert M.roc_auc(Y, P) == pytest.approx(wins / 25)


def test_ece_by_hand():
    # bin [0, 0.1): p 0.05, 0.05, observed 1/2 -> gap 0.45; bin [0.9, 1]: p 0.95, 0.95, observed 1 -> 0.05
    assert M.expected_calibration_error([0, 1, 1, 1], [0.05, 0.05, 0.95, 0.95]) == pytest.approx(0.25)
    # perfectly calibrated: 1 of 4 malignant at p = 0.25
    assert M.expected_calibration_error([1, 0, 0, 0], [0.25] * 4) == pytest.approx(0.0)
    # p = 1.0 falls in the last bin
    assert M.expected_calibration_error([1], [1.0]) == pytest.approx(0.0)


# A hand-built ROC: 10 benign, 10 malignant scores.
NEG = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
POS = [0.35, 0.55, 0.65, 0.75, 0.85, 0.92, 0.96, 0.97, 0.98, 0.99]
YR = np.array([0] * 10 + [1] * 10)
PR = np.array(NEG + POS)


def test_sensitivity_at_specificity_hand_built():
    # spec >= 0.90 allows one false positive (0.95): threshold 0.92 catches 5 of 10
    assert M.sensitivity_at_specificity(YR, PR, 0.90) == pytest.approx((0.5, 0.92))
    # spec >= 0.95 allows none: threshold 0.96 catches 4
    assert M.sensitivity_at_specificity(YR, PR, 0.95) == pytest.approx((0.4, 0.96))
    # sens >= 0.95 needs all 10 (threshold 0.35): benign below it are 0.1, 0.2, 0.3
    assert M.specificity_at_sensitivity(YR, PR, 0.95) == pytest.approx((0.3, 0.35))


def test_operating_points_are_achievable_and_optimal():
    """Brute force over every threshold: the helpers return the best achievable point."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 80)
    p = np.round(np.clip(0.3 * y + 0.7 * rng.random(80), 0, 1), 2)  # rounded: ties
    candidates = [M.threshold_metrics(y, p, t, n_bootstrap=0) for t in np.unique(p)]
    for spec in (0.9, 0.95):
        sens, thr = M.sensitivity_at_specificity(y, p, spec)
        real = M.threshold_metrics(y, p, thr, n_bootstrap=0)
        assert real["sensitivity"] == pytest.approx(sens) and real["specificity"] >= spec
        best = max([c["sensitivity"] for c in candidates if c["specificity"] >= spec], default=0.0)
        assert sens == pytest.approx(best)
    spec, thr = M.specificity_at_sensitivity(y, p, 0.95)
    real = M.threshold_metrics(y, p, thr, n_bootstrap=0)
    assert real["specificity"] == pytest.approx(spec) and real["sensitivity"] >= 0.95
    assert spec == pytest.approx(max(c["specificity"] for c in candidates if c["sensitivity"] >= 0.95))


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
    auc = M.roc_auc(y, p)
    ci = M.bootstrap_ci(skm.roc_auc_score, y, p, n_resamples=200, seed=5)
    assert ci[0] <= auc <= ci[1]
    assert 0.0 <= ci[0] < ci[1] <= 1.0
    assert M.bootstrap_ci(skm.roc_auc_score, y, p, n_resamples=200, seed=5) == ci
    assert M.bootstrap_ci(skm.roc_auc_score, y, p, n_resamples=200, seed=6) != ci
    m = M.compute_metrics(y, p, 0.5, n_bootstrap=200, seed=5)
    for key in ("roc_auc", "sensitivity", "specificity"):
        lo, hi = m[f"{key}_ci"]
        assert lo <= m[key] <= hi
    assert m["roc_auc_ci"] == list(ci)


def test_compute_metrics_gathers_everything():
    m = M.compute_metrics(Y, P, 0.5, n_bootstrap=50)
    for key in ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc", "pr_auc", "brier",
                "ece", "confusion", "roc_auc_ci", "sensitivity_ci", "specificity_ci", "sens_at_spec90",
                "sens_at_spec95", "spec_at_sens95", "n", "n_malignant", "threshold"):
        assert key in m
    assert m["n"] == 10 and m["n_malignant"] == 5


def test_one_class_gives_nan_not_an_error():
    y, p = np.ones(5, int), np.linspace(0.1, 0.9, 5)
    m = M.compute_metrics(y, p, 0.5, n_bootstrap=20)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["specificity"]) and math.isnan(m["roc_auc_ci"][0])
    assert m["sensitivity"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    "y, p",
    [([0, 1], [0.2]), ([0, 2], [0.1, 0.2]), ([0, 1], [0.1, 1.2]), ([0, 1], [0.1, float("nan")]), ([], [])],
)
def test_bad_inputs_raise(y, p):
    with pytest.raises(ValueError):
        M.roc_auc(y, p)


def test_per_source_roc_auc_counts_each_source_the_same():
    y = np.array([0, 1, 0, 1, 0, 0, 1, 1])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.7, 0.3, 0.4])  # a: perfect, b: all wrong
    src = np.array(["a"] * 4 + ["b"] * 4)
    assert M.per_source_roc_auc(y, p, src) == {"a": 1.0, "b": 0.0, "mean": 0.5}
    with pytest.raises(ValueError):
        M.per_source_roc_auc(y, p + 1, src)


def test_benign_groups_shows_which_look_alike_is_confused_with_melanoma():
    y = np.array([1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.1, 0.2, 0.3, 0.7, 0.95])
    dx = np.array(["mel", "mel", "nv", "nv", "nv", "bkl", "bkl"])
    out = M.benign_groups(y, p, dx, {"0.5": 0.5, "balanced": 0.25})
    assert set(out) == {"nv", "bkl"}  # malignant images are the reference, not a group
    assert out["nv"] == {"n": 3, "roc_auc_vs_malignant": 1.0, "called_malignant": {"0.5": 0.0, "balanced": 1 / 3}}
    assert out["bkl"]["roc_auc_vs_malignant"] == pytest.approx(0.25)  # of 4 pairs only 0.9 > 0.7 ranks right
    assert out["bkl"]["called_malignant"] == {"0.5": 1.0, "balanced": 1.0}
