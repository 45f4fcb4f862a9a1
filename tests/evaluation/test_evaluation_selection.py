"""Cross-validated selection: the held-out score of a choice, not of the winner in hindsight."""

from __future__ import annotations

import numpy as np
import pytest

from melascan.evaluation.selection import cross_validated_selection, cross_validated_thresholds


def _labels(n=100, n_pos=20):
    return np.r_[np.ones(n_pos, int), np.zeros(n - n_pos, int)]


def _prob(logit):
    return 1 / (1 + np.exp(-logit))


def test_a_clearly_better_candidate_is_always_chosen_and_scored_out_of_fold():
    rng = np.random.default_rng(0)
    y = _labels()
    good = _prob(y * 2.0 + rng.normal(0, 1, y.size))
    bad = _prob(y * 0.3 + rng.normal(0, 1, y.size))
    out = cross_validated_selection(y, {"bad": bad, "good": good}, n_repeats=20)
    assert out["chosen"] == {"bad": 0.0, "good": 1.0}
    # Always choosing "good" and the procedure give the same held-out folds, hence the same numbers.
    assert out["held_out_auc"] == out["always"]["good"]
    assert out["full_set_auc"]["good"] > out["full_set_auc"]["bad"]


def test_choosing_among_equal_candidates_is_not_rewarded():
    """Pure-noise candidates: the full-set winner looks better than chance, the held-out
    score of the choice does not."""
    rng = np.random.default_rng(1)
    y = _labels()
    scores = {f"noise{i}": rng.uniform(0, 1, y.size) for i in range(8)}
    out = cross_validated_selection(y, scores, n_repeats=50, seed=3)
    assert max(out["full_set_auc"].values()) > 0.55
    assert out["held_out_auc"]["mean"] == pytest.approx(0.5, abs=0.05)
    assert sum(out["chosen"].values()) == pytest.approx(1.0)


def test_ties_go_to_the_first_candidate_and_results_are_reproducible():
    y = _labels()
    s = np.linspace(0, 1, y.size)
    a = cross_validated_selection(y, {"first": s, "second": s.copy()}, n_repeats=5, seed=7)
    assert a["chosen"]["first"] == 1.0
    assert a == cross_validated_selection(y, {"first": s, "second": s.copy()}, n_repeats=5, seed=7)


@pytest.mark.parametrize("scores, message", [
    ({}, "no candidates"),
    ({"short": np.zeros(3)}, "one score per label"),
])
def test_bad_input_is_refused_with_a_clear_message(scores, message):
    with pytest.raises(ValueError, match=message):
        cross_validated_selection(_labels(), scores)


def test_too_few_images_of_a_class_for_the_folds():
    y = np.r_[1, np.zeros(9, int)]
    with pytest.raises(ValueError, match="at least 2 images"):
        cross_validated_selection(y, {"a": np.linspace(0, 1, 10)})


def test_a_site_shifted_upwards_gets_its_specificity_back_from_its_own_thresholds():
    """Every probability at the new site is higher (another dermatoscope): the model's
    thresholds call most of its benign lesions malignant; thresholds fitted on half the site
    and applied to the other half keep the melanomas and clear most of the benign ones."""
    rng = np.random.default_rng(0)
    y = _labels(200, 40)
    prob = _prob(y * 3.0 + rng.normal(0, 1, y.size) + 2.5)  # separable, but shifted up
    out = cross_validated_thresholds(y, prob, {"balanced": 0.5, "screening": 0.2}, n_repeats=20)
    assert out["n"] == 200 and out["n_malignant"] == 40
    assert out["balanced"]["model"]["specificity"] < 0.2  # the model's threshold: nearly all called malignant
    site = out["balanced"]["site"]
    assert site["specificity"]["mean"] > 0.8 and site["sensitivity"]["mean"] > 0.8
    lo, hi = site["specificity"]["split_range"]
    assert lo <= site["specificity"]["mean"] <= hi
    assert out["screening"]["site"]["sensitivity"]["mean"] >= 0.85  # fitted for 95 %, held out it slips a little
    assert out["screening"]["site_threshold"][0] <= out["screening"]["site_threshold"][1]


def test_site_thresholds_keep_groups_in_one_fold_and_reject_too_few_cases():
    y = np.repeat([1, 0, 0, 0], 10)
    groups = np.arange(40) // 2  # two pictures per lesion
    prob = _prob(y * 2.0 + np.random.default_rng(1).normal(0, 1, y.size))
    out = cross_validated_thresholds(y, prob, {"balanced": 0.5, "screening": 0.3}, groups=groups, n_repeats=5)
    assert out["n_repeats"] == 5 and 0 <= out["balanced"]["site"]["sensitivity"]["mean"] <= 1
    with pytest.raises(ValueError, match="at least 2 images"):
        cross_validated_thresholds(np.array([1, 0, 0]), np.array([0.9, 0.1, 0.2]), {"balanced": 0.5, "screening": 0.3})
