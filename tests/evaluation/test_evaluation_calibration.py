"""Temperature scaling and threshold choice on toy logits."""

import json

import numpy as np
import pytest

from melascan.errors import DataError
from melascan.evaluation import calibration as C
from melascan.evaluation import metrics as M


def calibrated_logits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits): these logits are calibrated at T = 1."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(int)
    return np.stack([np.zeros(n), margin], axis=1), y


def test_probability_is_softmax():
    z = np.array([[0.0, np.log(3.0)], [1.0, 1.0]])
    assert C.probability(z) == pytest.approx([0.75, 0.5])
    assert C.probability(z, 2.0)[0] == pytest.approx(np.sqrt(3) / (1 + np.sqrt(3)))
    with pytest.raises(ValueError):
        C.probability(np.zeros((3, 3)))


def test_temperature_recovers_overconfidence():
    z, y = calibrated_logits(4000)
    over = 5.0 * z  # an over-confident model
    t = C.fit_temperature(over, y)
    assert t == pytest.approx(5.0, rel=0.1)
    assert C.nll(over, y, t) < C.nll(over, y, 1.0)
    assert M.expected_calibration_error(y, C.probability(over, t)) < M.expected_calibration_error(
        y, C.probability(over)
    )
    # ranking is unchanged by T
    assert M.roc_auc(y, C.probability(over, t)) == pytest.approx(M.roc_auc(y, C.probability(over)))


def test_temperature_near_one_when_calibrated():
    z, y = calibrated_logits(4000, seed=1)
    assert C.fit_temperature(z, y) == pytest.approx(1.0, rel=0.1)


def test_screening_threshold_is_highest_with_95_percent_sensitivity():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 301)
    p = np.clip(0.3 * y + 0.7 * rng.random(301), 0, 1)
    t = C.screening_threshold(y, p)
    assert M.threshold_metrics(y, p, t, n_bootstrap=0)["sensitivity"] >= 0.95
    higher = p[p > t]
    if higher.size:  # the next higher threshold loses sensitivity
        assert M.threshold_metrics(y, p, higher.min(), n_bootstrap=0)["sensitivity"] < 0.95


def test_screening_threshold_by_hand():
    # 20 malignant scores 0.05..1.00: 95 % = 19 must be caught -> threshold = 2nd lowest = 0.10
    pos = np.arange(1, 21) / 20
    y = np.r_[np.ones(20, int), np.zeros(3, int)]
    assert C.screening_threshold(y, np.r_[pos, [0.0, 0.5, 0.9]]) == pytest.approx(0.10)


def test_balanced_threshold_maximises_youden():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    p = np.round(np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1), 2)

    def youden(t):
        m = M.threshold_metrics(y, p, t, n_bootstrap=0)
        return m["sensitivity"] + m["specificity"] - 1

    t = C.balanced_threshold(y, p)
    assert 0 <= t <= 1
    assert youden(t) == pytest.approx(max(youden(c) for c in np.unique(p)))


def test_fit_calibration_round_trip(tmp_path):
    z, y = calibrated_logits(500, seed=3)
    cal = C.fit_calibration(3.0 * z, y)
    assert set(cal["thresholds"]) == {"balanced", "screening"}
    assert cal["validation"]["nll_after"] <= cal["validation"]["nll_before"]
    assert cal["validation"]["at_threshold"]["screening"]["sensitivity"] >= 0.95
    path = C.save_calibration(tmp_path / "calibration.json", cal)
    assert C.load_calibration(tmp_path) == json.loads(path.read_text())


def test_load_calibration_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        C.load_calibration(tmp_path / "calibration.json")
    (tmp_path / "calibration.json").write_text('{"temperature": 1.0}')
    with pytest.raises(DataError, match="not a valid calibration"):
        C.load_calibration(tmp_path / "calibration.json")


def test_source_balanced_thresholds_give_each_source_the_same_weight():
    rng = np.random.default_rng(3)
    # a large easy source and a small source whose benign images score high
    y_a, y_b = np.repeat([0, 1], [900, 300]), np.repeat([0, 1], [60, 20])
    p_a = np.clip(rng.normal(0.2 + 0.6 * y_a, 0.1), 0, 1)
    p_b = np.clip(rng.normal(0.55 + 0.3 * y_b, 0.08), 0, 1)
    y, p, groups = np.concatenate([y_a, y_b]), np.concatenate([p_a, p_b]), np.repeat(["a", "b"], [1200, 80])

    def mean_j(t):
        out = []
        for g in ("a", "b"):
            yy, pp = y[groups == g], p[groups == g]
            out.append(np.mean(pp[yy == 1] >= t) - np.mean(pp[yy == 0] >= t))
        return np.mean(out)

    balanced = C.balanced_threshold(y, p, groups)
    assert mean_j(balanced) == pytest.approx(max(mean_j(t) for t in np.unique(p)))
    assert mean_j(balanced) >= mean_j(C.balanced_threshold(y, p))  # the pooled one serves source a
    # one group: the same as the pooled rule
    assert C.balanced_threshold(y_a, p_a, np.zeros(y_a.size)) == pytest.approx(C.balanced_threshold(y_a, p_a))
    screening = C.screening_threshold(y, p, 0.95, groups)
    for g in ("a", "b"):
        yy, pp = y[groups == g], p[groups == g]
        assert np.mean(pp[yy == 1] >= screening) >= 0.95
    assert screening == min(C.screening_threshold(y[groups == g], p[groups == g], 0.95) for g in ("a", "b"))


def test_fit_calibration_counts_each_validation_source_the_same():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1, 0, 1], [900, 300, 60, 20])
    groups = np.repeat(["a", "b"], [1200, 80])
    z1 = np.where(groups == "a", rng.normal(-1.5 + 3.0 * y, 0.8), rng.normal(0.5 + 1.5 * y, 0.6))
    logits = np.stack([np.zeros_like(z1), z1], axis=1)
    cal = C.fit_calibration(logits, y, groups=groups)
    p = C.probability(logits, cal["temperature"])
    assert cal["thresholds"]["balanced"] == C.balanced_threshold(y, p, groups)
    assert cal["thresholds"]["screening"] == C.screening_threshold(y, p, groups=groups)
    assert "each source counting the same" in cal["rules"]["balanced"]
    single = C.fit_calibration(logits, y, groups=np.full(y.size, "a"))  # one source: the pooled rule
    assert single["thresholds"] == C.fit_calibration(logits, y)["thresholds"]
    assert "each source" not in single["rules"]["screening"]
