"""Cross-validated selection: the held-out score of a choice, not of the winner in hindsight."""

from __future__ import annotations

import numpy as np
import pytest

from melascan.evaluation.selection import cross_validated_selection


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
