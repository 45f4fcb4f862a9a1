"""DeLong and McNemar: checked against brute-force definitions and known edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from melascan.evaluation.metrics import per_source_roc_auc
from melascan.evaluation.paired import delong_test, delong_test_by_group, mcnemar_test, structural_components


def _brute_components(y, s):
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def test_structural_components_match_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.normal(y, 1.0), 1)  # rounding makes ties
    v10, v01 = structural_components(y, s)
    b10, b01 = _brute_components(y, s)
    np.testing.assert_allclose(v10, b10)
    np.testing.assert_allclose(v01, b01)
    assert v10.mean() == pytest.approx(roc_auc_score(y, s))


def test_delong_variance_matches_the_bootstrap():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [300, 100])
    a = rng.normal(1.2 * y, 1.0)
    b = a + rng.normal(0, 0.8, y.size)  # correlated, weaker
    result = delong_test(y, a, b)
    assert result["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert result["difference"] > 0
    diffs = []
    for _ in range(400):
        i = np.concatenate([rng.choice(300, 300), 300 + rng.choice(100, 100)])
        diffs.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert result["std_error"] == pytest.approx(np.std(diffs), rel=0.2)


def test_delong_of_identical_scores_is_no_difference():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    result = delong_test(y, s, s)
    assert result["difference"] == 0 and result["p_value"] == 1.0
    with pytest.raises(ValueError, match="both classes"):
        delong_test(np.zeros(4), s[:4], s[:4])


def test_delong_by_group_tests_the_mean_over_sources_and_matches_the_bootstrap():
    rng = np.random.default_rng(2)
    y = np.concatenate([np.repeat([0, 1], [250, 50]), np.repeat([0, 1], [150, 100])])
    groups = np.repeat(["ham", "m10k"], [300, 250])
    a = expit(rng.normal(np.where(groups == "ham", 1.0, 2.0) * y, 1.0))  # probabilities, as the metrics take
    b = expit(logit(a) + rng.normal(0, 0.7, y.size))
    result = delong_test_by_group(y, a, b, groups)
    expected = per_source_roc_auc(y, a, groups)["mean"] - per_source_roc_auc(y, b, groups)["mean"]
    assert result["difference"] == pytest.approx(expected)
    assert set(result["by_group"]) == {"ham", "m10k"}
    assert result["ci95"][0] < result["difference"] < result["ci95"][1]
    diffs = []
    for _ in range(300):  # resample within each group and class, as the validation set was drawn
        i = np.concatenate([rng.choice(np.flatnonzero((groups == g) & (y == c)), np.sum((groups == g) & (y == c)))
                            for g in ("ham", "m10k") for c in (0, 1)])
        diffs.append(per_source_roc_auc(y[i], a[i], groups[i])["mean"] - per_source_roc_auc(y[i], b[i], groups[i])["mean"])
    assert result["std_error"] == pytest.approx(np.std(diffs), rel=0.25)
    same = delong_test_by_group(y, a, a, groups)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        delong_test_by_group(y, a, b, groups[:-1])


def test_mcnemar_counts_discordant_images_and_gives_the_exact_p_value():
    y = np.array([1] * 10 + [0] * 10)
    a = y.copy()
    b = y.copy()
    b[:6] = 0  # b misses six melanomas a catches
    b[10] = 1  # and calls one benign image malignant that a gets right
    a[19] = 1  # a calls one benign image malignant that b gets right
    result = mcnemar_test(y, a, b)
    assert (result["only_a_right"], result["only_b_right"]) == (7, 1)
    assert result["p_value"] == pytest.approx(0.0703125)  # 2 * P(X <= 1), X ~ Bin(8, 0.5)
    assert mcnemar_test(y, a, a)["p_value"] == 1.0
