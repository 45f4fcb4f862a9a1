"""``melascan prepare``: a deduplicated, leakage-free, stratified split of a dataset folder.

Steps (all deterministic for a given ``seed``; inputs are sorted, never taken in
file-system order):

1. scan: decode and hash every file in the class folders (``scan.py``); bad files
   go to ``skipped.csv``;
2. exact duplicates (same MD5): keep one copy (the first path in sorted order, with
   ``--official`` the copy in ``test/``); copies with conflicting labels are all skipped;
3. near duplicates (256-bit phash within ``max_distance``) form groups that are
   kept whole in one split (``split.py``);
4. sampled mode (default): draw ``malignant`` + ``benign`` images and split them
   ``ratios`` (70/15/15) per class with exact counts; ``--official``: keep the
   dataset's train/test folders, drop train images that (near-)duplicate a test
   image, and carve ``val_fraction`` of train (per class) out as validation;
5. write ``manifest.csv``, ``summary.json``, ``leakage.csv``, ``skipped.csv`` and
   ``hashes.csv`` (every readable image's MD5 and phash, reused by ``overlap.py``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np

from melascan.data import overlap as overlap_mod
from melascan.data.dedup import DEFAULT_MAX_DISTANCE, HASH_SIZE, near_duplicate_pairs
from melascan.data.manifest import LABELS, SPLITS, Record, write_manifest
from melascan.data.scan import ImageInfo, ScanResult, Skipped, scan_images
from melascan.data.split import assign_splits, connected_groups, sample_per_label, split_counts
from melascan.errors import DataError
from melascan.serialization import file_sha256

log = logging.getLogger(__name__)

#: Where an image ended up, besides train/val/test (used in leakage.csv).
REMOVED, UNSAMPLED, SKIPPED = "removed", "unsampled", "skipped"
LEAKAGE_COLUMNS = (
    "kind", "distance", "path_a", "label_a", "split_a", "path_b", "label_b", "split_b", "across_splits"
)
SKIPPED_COLUMNS = ("path", "label", "reason")


@dataclass
class PrepareConfig:
    """Everything one ``prepare`` run depends on."""

    src: Path
    out: Path
    official: bool = False
    malignant: int | None = 1500  # sampled mode only
    benign: int | None = 4500
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)  # sampled mode only
    val_fraction: float = 0.15  # --official only: share of each class of train
    seed: int = 42
    max_distance: int = DEFAULT_MAX_DISTANCE
    reference: Path | None = None  # a manifest to report overlap with
    workers: int = 2
    progress: bool = True

    def validate(self) -> None:
        if self.official:
            if not 0 < self.val_fraction < 1:
                raise DataError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        else:
            for name in LABELS:
                n = getattr(self, name)
                if n is None or n < 1:
                    raise DataError(f"--{name} must be a positive number of images, got {n}")
            if len(self.ratios) != 3 or any(r <= 0 for r in self.ratios):
                raise DataError(f"--ratios needs three positive numbers (train val test), got {self.ratios}")
            if abs(sum(self.ratios) - 1) > 1e-6:
                raise DataError(f"--ratios must sum to 1, got {list(self.ratios)} (sum {sum(self.ratios):g})")
        if self.max_distance < 0:
            raise DataError(f"--max-distance must be >= 0, got {self.max_distance}")
        if self.reference is not None and not Path(self.reference).exists():
            raise DataError(f"reference manifest not found: {self.reference}")

    def settings(self) -> dict:
        """The settings that shape the result (for summary.json)."""
        settings = {
            "mode": "official" if self.official else "sampled",
            "seed": self.seed,
            "near_duplicate_hash": f"imagehash.phash hash_size={HASH_SIZE} ({HASH_SIZE**2} bits)",
            "max_distance": self.max_distance,
        }
        if self.official:
            settings["val_fraction"] = self.val_fraction
        else:
            settings.update(malignant=self.malignant, benign=self.benign, ratios=list(self.ratios))
        return settings


@dataclass
class PrepareResult:
    records: list[Record]
    summary: dict
    leakage: list[dict]
    skipped: list[Skipped]
    overlap: list[dict] = field(default_factory=list)


@dataclass
class _Dedup:
    """Outcome of exact deduplication."""

    unique: dict[str, ImageInfo]  # path -> kept image
    pairs: list[tuple[str, str]]  # (kept or first copy, other copy)
    removed: set[str]  # copies dropped as duplicates
    conflicts: list[Skipped]  # copies skipped because their labels disagree


def remove_exact_duplicates(images: list[ImageInfo], prefer_top: str | None = None) -> _Dedup:
    """Keep one image per MD5: the first path in sorted order, or the first under the
    top folder ``prefer_top`` if any. Groups whose labels disagree are dropped whole."""
    by_md5: dict[str, list[ImageInfo]] = {}
    for img in sorted(images, key=lambda i: i.path):
        by_md5.setdefault(img.md5, []).append(img)
    result = _Dedup(unique={}, pairs=[], removed=set(), conflicts=[])
    for md5 in sorted(by_md5, key=lambda m: by_md5[m][0].path):
        copies = sorted(by_md5[md5], key=lambda i: (i.top_folder != prefer_top, i.path))
        keep, others = copies[0], copies[1:]
        result.pairs += [(keep.path, o.path) for o in others]
        if len({c.label for c in copies}) > 1:
            names = ", ".join(f"{c.path} ({c.label})" for c in copies)
            for c in copies:
                result.conflicts.append(Skipped(c.path, c.label, f"identical files with different labels: {names}"))
            continue
        result.unique[keep.path] = keep
        result.removed.update(o.path for o in others)
    return result


def _check_classes(images: dict[str, ImageInfo], where: str) -> None:
    for label in LABELS:
        if not any(i.label == label for i in images.values()):
            raise DataError(f"no usable {label} images in {where} (need a {label}/ folder with readable images)")


def _split_sampled(cfg: PrepareConfig, unique: dict[str, ImageInfo], groups: dict[str, str], rng) -> dict[str, str]:
    """Default mode: draw the requested counts and split them 70/15/15 per class."""
    _check_classes(unique, str(cfg.src))
    pools = {label: [p for p, i in unique.items() if i.label == label] for label in LABELS}
    wanted = {"malignant": cfg.malignant, "benign": cfg.benign}
    drawn = sample_per_label(pools, wanted, rng)
    labels = {p: label for label, paths in drawn.items() for p in paths}
    counts = {label: split_counts(wanted[label], cfg.ratios) for label in LABELS}
    return assign_splits(labels, groups, counts, rng)


def _split_official(
    cfg: PrepareConfig, unique: dict[str, ImageInfo], groups: dict[str, str], rng
) -> tuple[dict[str, str], set[str]]:
    """``--official``: test stays test; train images grouped with a test image are
    dropped; validation is carved out of train per class. Returns (assignment, dropped)."""
    train = {p: i for p, i in unique.items() if i.top_folder == "train"}
    test = {p: i for p, i in unique.items() if i.top_folder == "test"}
    _check_classes(train, f"{cfg.src}/train")
    _check_classes(test, f"{cfg.src}/test")
    test_groups = {groups[p] for p in test}
    dropped = {p for p in train if groups[p] in test_groups}
    kept = {p: i.label for p, i in train.items() if p not in dropped}
    n_per_label = {label: sum(1 for l in kept.values() if l == label) for label in LABELS}
    ratios = (1 - cfg.val_fraction, cfg.val_fraction, 0.0)
    counts = {label: split_counts(n, ratios) for label, n in n_per_label.items()}
    assignment = assign_splits(kept, groups, counts, rng)
    assignment.update({p: "test" for p in test})
    return assignment, dropped


def _leakage_rows(
    pairs: list[tuple[str, str, int, str]], labels: dict[str, str], status: dict[str, str]
) -> list[dict]:
    rows = []
    for a, b, dist, kind in pairs:
        sa, sb = status[a], status[b]
        across = sa in SPLITS and sb in SPLITS and sa != sb
        rows.append(
            dict(kind=kind, distance=dist, path_a=a, label_a=labels[a], split_a=sa,
                 path_b=b, label_b=labels[b], split_b=sb, across_splits=int(across))
        )
    return rows


def _counts(records: list[Record]) -> dict:
    """``{split or "total": {"benign": n, "malignant": n, "total": n}}``."""
    counts = {}
    for split in (*SPLITS, "total"):
        rows = records if split == "total" else [r for r in records if r.split == split]
        counts[split] = {label: sum(r.label == label for r in rows) for label in LABELS}
        counts[split]["total"] = len(rows)
    return counts


def _n_multi_groups(groups: dict[str, str]) -> int:
    """Number of groups with more than one image."""
    sizes = Counter(groups.values())
    return sum(1 for n in sizes.values() if n > 1)


def prepare(cfg: PrepareConfig) -> PrepareResult:
    """Run the whole preparation and write its files into ``cfg.out``."""
    cfg.validate()
    src = Path(os.path.abspath(cfg.src))
    scan: ScanResult = scan_images(src, workers=cfg.workers, progress=cfg.progress)
    skipped = list(scan.skipped)
    images = scan.images
    if cfg.official:
        outside = [i for i in images if i.top_folder not in ("train", "test")]
        skipped += [Skipped(i.path, i.label, "not under a top-level train/ or test/ folder (--official)") for i in outside]
        images = [i for i in images if i.top_folder in ("train", "test")]

    # 1. exact duplicates, 2. near-duplicate groups
    dedup = remove_exact_duplicates(images, prefer_top="test" if cfg.official else None)
    skipped = sorted(skipped + dedup.conflicts, key=lambda s: s.path)
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    unique = dedup.unique
    hashes = {p: imagehash.hex_to_hash(i.phash) for p, i in unique.items()}
    near = near_duplicate_pairs(hashes, max_distance=cfg.max_distance)
    groups = connected_groups(sorted(unique), near)

    # 3. sample and split (one RNG, used in a fixed order)
    rng = np.random.default_rng(cfg.seed)
    dropped_near_test: set[str] = set()
    if cfg.official:
        assignment, dropped_near_test = _split_official(cfg, unique, groups, rng)
    else:
        assignment = _split_sampled(cfg, unique, groups, rng)
    records = sorted(
        (Record(p, unique[p].label, s, unique[p].md5, unique[p].width, unique[p].height) for p, s in assignment.items()),
        key=lambda r: (SPLITS.index(r.split), LABELS.index(r.label), r.path),
    )

    # 4. leakage report: where each image of every duplicate pair ended up
    status = {i.path: UNSAMPLED for i in images}
    status.update({p: REMOVED for p in dedup.removed | dropped_near_test})
    status.update({s.path: SKIPPED for s in dedup.conflicts})
    status.update(assignment)
    pairs = [(a, b, 0, "exact") for a, b in dedup.pairs] + [(a, b, d, "near") for a, b, d in near]
    leakage = _leakage_rows(pairs, {i.path: i.label for i in images}, status)
    across = sum(row["across_splits"] for row in leakage)
    if across:  # cannot happen: groups are assigned whole
        raise RuntimeError(f"internal error: {across} duplicate pairs ended up in two splits")

    summary = {
        "source_root": str(src),
        "settings": cfg.settings(),
        "counts": _counts(records),
        "files": {
            "in_class_folders": len(scan.images) + len(scan.skipped),
            "readable_images": len(scan.images),
            "skipped": len(skipped),
            "ignored_outside_class_folders": len(scan.ignored),
        },
        "unique_images": {label: sum(i.label == label for i in unique.values()) for label in LABELS},
        "exact_duplicates": {
            "pairs": len(dedup.pairs),
            "groups": len({a for a, _ in dedup.pairs}),
            "copies_removed": len(dedup.removed),
            "conflicting_label_files": len(dedup.conflicts),
        },
        "near_duplicates": {
            "pairs": len(near),
            "groups": _n_multi_groups(groups),
            "pairs_both_in_manifest": sum(
                r["kind"] == "near" and r["split_a"] in SPLITS and r["split_b"] in SPLITS for r in leakage
            ),
            "pairs_across_splits": across,
        },
    }
    if cfg.official:
        summary["near_duplicates"]["train_images_removed_as_copies_of_test"] = len(dropped_near_test)

    overlap_rows: list[dict] = []
    if cfg.reference is not None:
        reference = Path(cfg.reference)
        reference = reference / "manifest.csv" if reference.is_dir() else reference
        overlap_rows = overlap_mod.find_overlap(records, unique, src, reference, cfg.max_distance)
        summary["reference"] = overlap_mod.overlap_summary(reference, records, overlap_rows)

    result = PrepareResult(records, summary, leakage, skipped, overlap_rows)
    write_outputs(cfg.out, result, scan.images)
    return result


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(out: Path, result: PrepareResult, images: list[ImageInfo]) -> None:
    """Write every output file (byte-reproducible: fixed order, ``\\n`` line ends)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    write_manifest(out / "manifest.csv", result.records)
    _write_csv(out / "leakage.csv", LEAKAGE_COLUMNS, result.leakage)
    _write_csv(out / "skipped.csv", SKIPPED_COLUMNS, [vars(s) for s in result.skipped])
    overlap_mod.write_hashes(out / "hashes.csv", images)
    if "reference" in result.summary:
        overlap_mod.write_overlap(out / "overlap.csv", result.overlap)
    else:
        (out / "overlap.csv").unlink(missing_ok=True)  # never leave a stale one behind
    result.summary["manifest_sha256"] = file_sha256(out / "manifest.csv")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
