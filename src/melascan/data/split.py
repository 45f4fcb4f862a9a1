"""Group-aware, stratified splitting with exact counts (pure functions, numpy RNG).

Near-duplicate images form groups (connected components of the near-duplicate
graph); a group always lands whole in one split, so no lesion is seen in training
and again in validation or test. Exact per-split, per-class counts still hold:
the few multi-image groups are placed first, then single images fill the quotas.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from melascan.data.manifest import LABELS, SPLITS
from melascan.errors import DataError


def split_counts(n: int, ratios: Sequence[float]) -> dict[str, int]:
    """Split ``n`` items by ``ratios`` (train, val, test) into integers summing to ``n``.

    Largest-remainder rounding; ties go to the earlier split. ``1500, (0.7, 0.15, 0.15)``
    -> ``{"train": 1050, "val": 225, "test": 225}``.
    """
    quotas = [n * r for r in ratios]
    counts = [math.floor(q + 1e-9) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return dict(zip(SPLITS, counts))


def connected_groups(keys: Iterable[str], pairs: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """Union-find: ``key -> group id`` (the group's smallest key) for the graph ``pairs``.

    Pair ends that are not in ``keys`` are ignored; every key gets a group, singletons
    their own.
    """
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b, _ in pairs:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)  # the root stays the smallest key
    return {k: find(k) for k in parent}


def assign_splits(
    labels: Mapping[str, str],
    groups: Mapping[str, str],
    counts: Mapping[str, Mapping[str, int]],
    rng: np.random.Generator,
) -> dict[str, str]:
    """Assign every key of ``labels`` to a split, keeping each group in one split.

    ``labels``: key -> label; ``groups``: key -> group id; ``counts[label][split]`` the
    exact number wanted (summing, per label, to the number of keys with that label).
    Multi-image groups go first, to a random split with room for them (chance
    proportional to the room left), then single images fill what remains in random
    order. Raises ``DataError`` when a group fits nowhere.
    """
    keys = sorted(labels)
    per_label = Counter(labels[k] for k in keys)
    for label in sorted(set(per_label) | set(counts)):
        wanted = sum(counts.get(label, {}).values())
        if wanted != per_label[label]:
            raise ValueError(f"{per_label[label]} {label} images but counts ask for {wanted}")
    room = {label: {s: int(counts[label].get(s, 0)) for s in SPLITS} for label in counts}

    members: dict[str, list[str]] = {}
    for k in keys:
        members.setdefault(groups.get(k, k), []).append(k)
    multi = sorted((g for g in members.values() if len(g) > 1), key=lambda g: g[0])
    assignment: dict[str, str] = {}
    for index in rng.permutation(len(multi)):
        group = multi[index]
        need = Counter(labels[k] for k in group)
        fits = [s for s in SPLITS if all(room[l][s] >= n for l, n in need.items())]
        if not fits:
            raise DataError(
                f"cannot keep the {len(group)} near-duplicate images {group[:3]}... in one split "
                "with the requested counts; request fewer images or lower --max-distance"
            )
        weights = np.array([sum(room[l][s] for l in need) for s in fits], dtype=float)
        split = fits[int(rng.choice(len(fits), p=weights / weights.sum()))]
        for k in group:
            assignment[k] = split
        for l, n in need.items():
            room[l][split] -= n

    for label in LABELS:
        singles = [g[0] for g in members.values() if len(g) == 1 and labels[g[0]] == label]
        singles.sort()
        order = [singles[i] for i in rng.permutation(len(singles))]
        start = 0
        for split in SPLITS:
            n = room.get(label, {}).get(split, 0)
            for k in order[start : start + n]:
                assignment[k] = split
            start += n
    return assignment


def sample_per_label(
    pools: Mapping[str, Sequence[str]], wanted: Mapping[str, int], rng: np.random.Generator
) -> dict[str, list[str]]:
    """Draw ``wanted[label]`` keys from each label's pool, uniformly, without replacement.

    Pools are sorted first, so the draw depends only on their content and the RNG.
    Raises ``DataError`` when a pool is too small.
    """
    drawn = {}
    for label in LABELS:
        if label not in wanted:
            continue
        pool = sorted(pools.get(label, ()))
        n = wanted[label]
        if n > len(pool):
            raise DataError(
                f"only {len(pool)} usable {label} images (after removing duplicates and bad "
                f"files), but {n} were requested; lower --{label}"
            )
        drawn[label] = sorted(pool[i] for i in rng.permutation(len(pool))[:n])
    return drawn


def split_groups(
    group_labels: Mapping[str, str],
    group_sizes: Mapping[str, int],
    ratios: Sequence[float],
    rng: np.random.Generator,
) -> dict[str, str]:
    """Assign whole groups (e.g. all images of one lesion) to splits, per label, by ``ratios``.

    Groups of each label are visited in a seeded random order and each goes to the split
    furthest below its image quota (``split_counts`` of the label's image total), so the
    image counts land within one group's size of the ratios. Returns ``group -> split``.
    """
    assignment: dict[str, str] = {}
    for label in sorted(set(group_labels.values())):
        groups = sorted(g for g, l in group_labels.items() if l == label)
        quota = split_counts(sum(group_sizes[g] for g in groups), ratios)
        filled = dict.fromkeys(SPLITS, 0)
        for index in rng.permutation(len(groups)):
            group = groups[index]
            split = max(SPLITS, key=lambda s: (quota[s] - filled[s], -SPLITS.index(s)))
            assignment[group] = split
            filled[split] += group_sizes[group]
    return assignment
