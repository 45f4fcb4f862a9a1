"""Group-aware stratified splitting (melascan.data.split): pure functions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from melascan.data.split import assign_splits, connected_groups, sample_per_label, split_counts
from melascan.errors import DataError


def test_split_counts_of_the_seed_study():
    assert split_counts(1500, (0.7, 0.15, 0.15)) == {"train": 1050, "val": 225, "test": 225}
    assert split_counts(4500, (0.7, 0.15, 0.15)) == {"train": 3150, "val": 675, "test": 675}


@given(n=st.integers(0, 5000), a=st.integers(1, 100), b=st.integers(1, 100), c=st.integers(1, 100))
@settings(max_examples=200, deadline=None)
def test_split_counts_sum_and_stay_close_to_ratios(n, a, b, c):
    ratios = (a / (a + b + c), b / (a + b + c), c / (a + b + c))
    counts = split_counts(n, ratios)
    assert sum(counts.values()) == n
    for split, r in zip(counts, ratios):
        assert abs(counts[split] - n * r) < 1


def test_connected_groups_chains_and_ignores_unknown_keys():
    groups = connected_groups(["a", "b", "c", "d", "e"], [("b", "c", 3), ("c", "d", 5), ("e", "zz", 0)])
    assert groups == {"a": "a", "b": "b", "c": "b", "d": "b", "e": "e"}


def _problem():
    labels = {f"m{i:02d}": "malignant" for i in range(20)} | {f"b{i:02d}": "benign" for i in range(40)}
    groups = {k: k for k in labels}
    for members in (["m00", "m01", "m02"], ["b00", "b01"], ["b02", "b03", "b04", "b05"], ["m05", "b10"]):
        for k in members:
            groups[k] = members[0]
    counts = {"malignant": split_counts(20, (0.7, 0.15, 0.15)), "benign": split_counts(40, (0.7, 0.15, 0.15))}
    return labels, groups, counts


def test_assign_splits_exact_counts_and_whole_groups():
    labels, groups, counts = _problem()
    for seed in range(20):
        out = assign_splits(labels, groups, counts, np.random.default_rng(seed))
        assert set(out) == set(labels)
        got = Counter((labels[k], s) for k, s in out.items())
        for label, per_split in counts.items():
            for split, n in per_split.items():
                assert got[(label, split)] == n
        for g in set(groups.values()):
            assert len({out[k] for k in labels if groups[k] == g}) == 1


def test_assign_splits_is_deterministic_and_seed_dependent():
    labels, groups, counts = _problem()
    first = assign_splits(labels, groups, counts, np.random.default_rng(42))
    again = assign_splits(dict(reversed(list(labels.items()))), groups, counts, np.random.default_rng(42))
    other = assign_splits(labels, groups, counts, np.random.default_rng(43))
    assert first == again  # input order does not matter
    assert first != other


def test_assign_splits_refuses_a_group_that_fits_nowhere():
    labels = {k: "benign" for k in "abcdef"}
    groups = {k: "a" if k in "abcd" else k for k in labels}  # a 4-image group
    counts = {"benign": {"train": 2, "val": 2, "test": 2}}
    with pytest.raises(DataError, match="near-duplicate"):
        assign_splits(labels, groups, counts, np.random.default_rng(0))


def test_sample_per_label_draws_sorted_and_refuses_too_few():
    pools = {"benign": [f"b{i}" for i in range(10)], "malignant": ["m2", "m1", "m0"]}
    drawn = sample_per_label(pools, {"benign": 4, "malignant": 3}, np.random.default_rng(1))
    assert drawn["malignant"] == ["m0", "m1", "m2"]
    assert len(drawn["benign"]) == 4 and drawn["benign"] == sorted(drawn["benign"])
    with pytest.raises(DataError, match="only 3 usable malignant images.*4 were requested"):
        sample_per_label(pools, {"malignant": 4}, np.random.default_rng(1))
