"""``melascan evaluate``: metrics, calibration, figures and report of a trained run.

Heavy modules (torch via the training API, matplotlib) are imported inside ``run_evaluate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `melascan train` (runs/NAME), or an exported model "
                                    "folder (with model_card.json: scored as shipped, torch-free, card thresholds)")
    parser.add_argument("--out", metavar="DIR",
                        help="model folders only: where metrics.json and predictions.csv go (default evals/NAME)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--split", default="test", choices=("test", "val", "train"),
                       help="manifest split to score (default: test)")
    where.add_argument("--folder", metavar="DIR",
                       help="score a labelled folder instead: images inside folders named benign/malignant "
                            "(any nesting); images also in the training split are reported and scored apart")
    where.add_argument("--csv", metavar="FILE",
                       help="score a labelled CSV: path,label, PH2's labels.csv or HAM10000's metadata "
                            "(images looked up beside the CSV and in its images/ folder); leakage-guarded too")
    parser.add_argument("--name", help="evaluation name, i.e. the folder eval/NAME (default: split or folder name)")
    parser.add_argument("--tta", nargs="?", type=int, const=8, default=0, metavar="VIEWS",
                        help="also score with test-time augmentation, beside plain: the mean over VIEWS "
                             "symmetries of the square (2, 4 or 8; default 8); `melascan export --tta` "
                             "ships it with its own temperature and thresholds")
    parser.add_argument("--checkpoint", default="best",
                        help="checkpoint to load: best (default), last, epoch_010 ...")
    parser.add_argument("--batch-size", type=int, default=64, help="prediction batch size (default 64)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="score a seeded random subset of N images of val and of the target (quick look)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples for the 95%% CIs (default 1000; 0 = none)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--max-distance", type=int, metavar="BITS",
                        help="leakage guard: perceptual-hash distance counted as a near duplicate "
                             "(default: melascan.data.dedup.DEFAULT_MAX_DISTANCE)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where the model runs (default: CUDA when available)")
    parser.add_argument("--workers", type=int, default=2, help="processes hashing a --folder's images (default 2)")


def run_evaluate(args: argparse.Namespace) -> int:
    from melascan.errors import DataError
    from melascan.evaluation.evaluate import evaluate_run
    from melascan.evaluation.report import fmt, fmt_ci
    from melascan.preprocess import tta_view_count

    if args.limit is not None and args.limit < 1:
        raise DataError("--limit must be >= 1")
    if args.bootstrap < 0:
        raise DataError("--bootstrap must be >= 0")
    try:
        tta_view_count(args.tta)
    except ValueError as exc:
        raise DataError(f"--tta: {exc}") from None
    if (Path(args.run) / "model_card.json").is_file():
        return _run_bundle(args)
    if args.out:
        raise DataError("--out applies to exported model folders; a run writes into RUN/eval/NAME")
    result = evaluate_run(
        args.run,
        split=args.split,
        folder=args.folder,
        name=args.name,
        tta=args.tta,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        limit=args.limit,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        max_distance=args.max_distance,
        device=args.device,
        workers=max(1, args.workers),
        csv_file=args.csv,
    )
    cal = result["calibration"]
    print(f"{result['name']}: {result['n_images']} images ({result['n_malignant']} malignant)")
    print(f"calibration (val): T={fmt(cal['temperature'])}  thresholds: "
          + ", ".join(f"{k}={fmt(v)}" for k, v in cal["thresholds"].items()))
    for variant in ("plain", "tta"):
        if variant not in result:
            continue
        s = result[variant]
        r = s["ranking"]
        print(f"[{variant}] ROC-AUC {fmt_ci(r['roc_auc'], r.get('roc_auc_ci'))}  PR-AUC {fmt(r['pr_auc'])}  "
              f"Brier {fmt(r['brier'])}  ECE {fmt(r['ece'])}")
        for op, m in s["thresholds"].items():
            print(f"[{variant}] {op:>9} t={fmt(m['threshold'])}  acc {fmt(m['accuracy'])}  "
                  f"sens {fmt(m['sensitivity'])}  spec {fmt(m['specificity'])}  F1 {fmt(m['f1'])}")
    leak = result.get("leakage")
    if leak and leak["n_leaked"]:
        print(f"leakage: {leak['n_leaked']} of {leak['checked']} images also in the run's train/val split "
              f"({leak['n_in_train']} in train, {leak['n_in_val']} in val; {leak['n_exact']} exact, "
              f"{leak['n_near']} near): metrics without them are in metrics.json and the report")
    print(f"written: {args.run}/eval/{result['name']}/ and {args.run}/report.html")
    return 0


def _run_bundle(args: argparse.Namespace) -> int:
    from melascan.errors import DataError
    from melascan.evaluation.bundle import evaluate_bundle
    from melascan.evaluation.report import fmt, fmt_ci

    if args.tta or args.limit or args.checkpoint != "best":
        raise DataError("--tta, --limit and --checkpoint apply to run folders, not to exported models")
    name = args.name or (Path(args.csv).stem if args.csv else Path(args.folder).name if args.folder else args.split)
    out = Path(args.out or Path("evals") / name)
    r = evaluate_bundle(args.run, out, split=None if (args.csv or args.folder) else args.split, folder=args.folder,
                        csv_file=args.csv, name=name, n_bootstrap=args.bootstrap, seed=args.seed,
                        max_distance=args.max_distance, workers=max(1, args.workers), progress=True)
    print(f"{r['name']}: {r['n_images']} images ({r['n_malignant']} malignant), model {args.run}")
    for what in ("shipped", "network"):
        if what not in r:
            continue
        rank = r[what]["ranking"]
        print(f"[{what}] ROC-AUC {fmt_ci(rank['roc_auc'], rank.get('roc_auc_ci'))}  PR-AUC {fmt(rank['pr_auc'])}")
        for op, m in r[what]["thresholds"].items():
            print(f"[{what}] {op:>9} t={fmt(m['threshold'])}  sens {fmt(m['sensitivity'])}  "
                  f"spec {fmt(m['specificity'])}  F1 {fmt(m['f1'])}")
    site = r["site_thresholds"]
    if site["fitted"]:
        for op in ("balanced", "screening"):
            rates = "  ".join(f"{k[:4]} {fmt(site[op]['site'][k]['mean'])} [{fmt(site[op]['site'][k]['split_range'][0])}-"
                              f"{fmt(site[op]['site'][k]['split_range'][1])}]" for k in ("sensitivity", "specificity"))
            print(f"[this set's own {op} threshold, fitted on half and scored on the other half] {rates}")
    else:
        print(f"[this set's own thresholds] not fitted: {site['reason']}")
    if "scope" in r:
        print(f"out of scope: {r['scope']['rejected']} of {r['n_images']} ({r['scope']['rejected_rate']:.1%})")
    leak = r.get("leakage")
    if leak and leak["n_leaked"]:
        print(f"leakage: {leak['n_leaked']} images also in the model's train/val data (metrics without them "
              "in metrics.json)")
    print(f"written: {out}/metrics.json, predictions.csv")
    return 0
