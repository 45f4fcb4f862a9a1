"""CLI commands of the data stage: ``melascan prepare`` and ``melascan eda``."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _or(value, default):
    """``value`` unless the option was not given (``None``)."""
    return default if value is None else value


def add_prepare(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Build a deduplicated, leakage-free, stratified train/val/test split of a folder "
        "laid out as train|test/benign|malignant/*.jpg (class folders at any depth)."
    )
    parser.add_argument("src", type=Path, nargs="?", help="dataset folder (read-only); not with --base")
    parser.add_argument("--out", type=Path, required=True, help="output folder (manifest.csv, summary.json, ...)")
    parser.add_argument("--official", action="store_true",
                        help="keep the dataset's own train/test folders; carve validation out of train")
    parser.add_argument("--malignant", type=int, default=None, help="malignant images to sample (default 1500)")
    parser.add_argument("--benign", type=int, default=None, help="benign images to sample (default 4500)")
    parser.add_argument("--ratios", type=float, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                        help="split ratios of the sampled images (default 0.7 0.15 0.15)")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="--official: share of each class of train used for validation (default 0.15)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--max-distance", type=int, default=None,
                        help="near-duplicate threshold: phash Hamming distance of 256 bits (default 36)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="another manifest.csv: write overlap.csv with the images both share")
    mix = parser.add_argument_group(
        "multi-source mix", "a training manifest from a seed split plus HAM10000 (docs/data.md)")
    mix.add_argument("--base", type=Path, default=None,
                     help="a split written by `melascan prepare` (e.g. data/seed): its test split is kept exactly")
    mix.add_argument("--ham", type=Path, default=None, help="HAM10000 folder, split by lesion_id")
    mix.add_argument("--exclude", type=Path, default=None,
                     help="file of melanoma-10k paths never to train or select on (their near duplicates too)")
    mix.add_argument("--no-rest", action="store_true", help="do not add the unused melanoma-10k images to train")
    parser.add_argument("--workers", type=int, default=_default_workers(), help="hashing processes (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_prepare_mix(args: argparse.Namespace) -> int:
    from melascan.data.mix import MixConfig, prepare_mix
    from melascan.errors import DataError

    if args.src is not None or args.official or args.ham is None or args.base is None:
        raise DataError("a mix needs --base SPLIT and --ham FOLDER, and no dataset folder or --official")
    cfg = MixConfig(base=args.base, ham=args.ham, out=args.out, exclude=args.exclude, add_rest=not args.no_rest,
                    seed=args.seed, max_distance=36 if args.max_distance is None else args.max_distance,
                    workers=max(1, args.workers), progress=not args.no_progress)
    start = time.perf_counter()
    s = prepare_mix(cfg)
    log.info("wrote %s (%.1f s)", args.out, time.perf_counter() - start)
    for source, by_split in s["counts"].items():
        for split, c in by_split.items():
            log.info("  %-13s %-5s  malignant %5d  benign %5d", source, split, c["malignant"], c["benign"])
    ex = s["excluded"]
    log.info("  excluded: %d listed, %d removed from train/val (+%d near duplicates), %d kept in the seed test",
             ex["listed"], ex["removed_from_train_val"], ex["near_duplicates_removed"], ex["kept_in_seed_test"])
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from melascan.data.dedup import DEFAULT_MAX_DISTANCE
    from melascan.data.prepare import PrepareConfig, prepare
    from melascan.errors import DataError

    if args.base is not None or args.ham is not None:
        return run_prepare_mix(args)
    if args.src is None:
        raise DataError("give a dataset folder, or --base and --ham for a multi-source mix")
    if args.exclude is not None:
        raise DataError("--exclude applies to a mix (--base/--ham)")
    # options of the other mode would be silently ignored: refuse them instead
    if args.official and (args.malignant is not None or args.benign is not None or args.ratios is not None):
        raise DataError("--malignant/--benign/--ratios shape the sampled split; --official uses every image "
                        "and the dataset's own test folder (see --val-fraction)")
    if not args.official and args.val_fraction is not None:
        raise DataError("--val-fraction applies to --official only; use --ratios for the sampled split")
    defaults = PrepareConfig(src=args.src, out=args.out)
    cfg = PrepareConfig(
        src=args.src,
        out=args.out,
        official=args.official,
        malignant=None if args.official else _or(args.malignant, defaults.malignant),
        benign=None if args.official else _or(args.benign, defaults.benign),
        ratios=tuple(args.ratios) if args.ratios else defaults.ratios,
        val_fraction=_or(args.val_fraction, defaults.val_fraction),
        seed=args.seed,
        max_distance=DEFAULT_MAX_DISTANCE if args.max_distance is None else args.max_distance,
        reference=args.reference,
        workers=max(1, args.workers),
        progress=not args.no_progress,
    )
    start = time.perf_counter()
    result = prepare(cfg)
    s = result.summary
    c = s["counts"]
    log.info("wrote %s (%.1f s)", args.out, time.perf_counter() - start)
    for split in ("train", "val", "test"):
        log.info("  %-5s  malignant %5d  benign %5d", split, c[split]["malignant"], c[split]["benign"])
    ex, nd = s["exact_duplicates"], s["near_duplicates"]
    log.info("  exact duplicates: %d pairs, %d copies removed", ex["pairs"], ex["copies_removed"])
    log.info("  near duplicates: %d pairs in %d groups, none across splits", nd["pairs"], nd["groups"])
    if s["files"]["skipped"]:
        log.info("  skipped %d bad files: see %s", s["files"]["skipped"], Path(args.out) / "skipped.csv")
    if "reference" in s:
        seen = s["reference"]["images_matching_reference"]["test"]["seen"]
        log.info("  %d test images match an image of the reference's train/val: see overlap.csv", seen)
    return 0


def add_eda(parser: argparse.ArgumentParser) -> None:
    parser.description = "Figures and statistics (class counts, resolutions, RGB mean/std) of a prepared split."
    parser.add_argument("manifest", type=Path, help="manifest.csv written by `melascan prepare` (or its folder)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (eda.json, *.png, index.html)")
    parser.add_argument("--seed", type=int, default=42, help="seed for the sample grids (default 42)")
    parser.add_argument("--workers", type=int, default=_default_workers(), help="decoding processes (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_eda(args: argparse.Namespace) -> int:
    from melascan.data.eda import EdaConfig, run_eda_report

    cfg = EdaConfig(
        manifest=args.manifest, out=args.out, seed=args.seed,
        workers=max(1, args.workers), progress=not args.no_progress,
    )
    start = time.perf_counter()
    stats = run_eda_report(cfg)
    log.info("wrote %s (%.1f s)", args.out, time.perf_counter() - start)
    log.info("  train rgb_mean %s  rgb_std %s", [round(v, 4) for v in stats["rgb_mean"]],
             [round(v, 4) for v in stats["rgb_std"]])
    return 0


def add_audit(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Shortcut audit: cross-validated ROC-AUC of small models on trivial cues (size, colour, "
                          "black frame, JPEG quality, 32-px thumbnails, how the lesion is framed) for the label, per source, "
                          "and for the source.")
    parser.add_argument("manifests", nargs="+", metavar="NAME=MANIFEST",
                        help="named manifests, e.g. melanoma-10k=data/seed/manifest.csv mix=data/mix/manifest.csv")
    parser.add_argument("--out", type=Path, required=True, help="output folder (audit.json, audit.md, audit.png)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test", "all"),
                        help="which split to audit (default: train, what a model learns from)")
    parser.add_argument("--workers", type=int, default=_default_workers(), help="decoding processes (default 2)")


def run_audit(args: argparse.Namespace) -> int:
    from melascan.data.audit import run_audit as audit
    from melascan.errors import DataError

    manifests = {}
    for item in args.manifests:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise DataError(f"expected NAME=MANIFEST, got {item!r}")
        manifests[name] = Path(path)
    start = time.perf_counter()
    data = audit(manifests, args.out, split=None if args.split == "all" else args.split, workers=max(1, args.workers))
    log.info("wrote %s (%.1f s)", args.out, time.perf_counter() - start)
    for name, result in data.items():
        for row in result["rows"]:
            log.info("  %-14s %-8s %-34s %-13s AUC %.3f", name, row["cues"], row["target"], row["subset"], row["auc"])
    return 0
