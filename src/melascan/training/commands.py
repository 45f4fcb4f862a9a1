"""``melascan train`` (and ``melascan study``): torch is imported inside ``run_*`` only."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML run config (default: built-in defaults = configs/default.yaml)")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. --set epochs=1 limit=64 lr=3e-4")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<config name>-<date-time>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue RUN_DIR from checkpoints/last.pt (its config.yaml + --set overrides)")
    parser.epilog = "Multi-GPU: torchrun --nproc_per_node=N -m melascan.cli train --config ... (same arguments)."


def run_train(args: argparse.Namespace) -> int:
    from melascan.errors import DataError
    from melascan.runfolder import RunFolder
    from melascan.training.config import load_config
    from melascan.training.engine import train

    if args.resume:
        if args.config or args.out:
            raise DataError("--resume RUN_DIR continues that run with its own config.yaml; drop --config/--out")
        cfg = RunFolder(args.resume).read_config(args.overrides)
        out = args.resume
    else:
        cfg = load_config(args.config, args.overrides)
        name = args.config.stem if args.config else "default"
        out = args.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = train(cfg, out, resume=bool(args.resume))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports
    best = summary["best"]
    print(f"run folder: {out}\nbest epoch {summary['best_epoch']}: val loss {best['val_loss']:.4f}, "
          f"val AUC {best.get('val_auc', float('nan')):.3f}")
    return 0


def add_ensemble(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="two or more trained run folders (same pre-processing and validation images)")
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's run folder, e.g. runs/ens3")


def run_ensemble(args: argparse.Namespace) -> int:
    from melascan.runfolder import RunFolder
    from melascan.training.ensemble import architecture, make_ensemble

    out = make_ensemble(args.runs, args.out)
    print(f"ensemble run folder: {out} ({architecture(RunFolder(out).read_config())})\n"
          f"next: melascan evaluate {out} --split test, then melascan export {out} --out DIR "
          "(--fp16-weights keeps the file small)")
    return 0


def add_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", choices=("augment", "models", "strategies"),
                        help="augment: 14 recipes without/with WS (tables 5-6) | models: six families + "
                             "EfficientNet-Lite0 (table 10) | strategies: dropout, smoothing, TTA, focal, warm-up "
                             "(table 12)")
    parser.add_argument("--config", type=Path, help="base YAML run config (default: built-in defaults)")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override base config keys, e.g. --set epochs=20 image_size=192 threads=1")
    parser.add_argument("--epochs", type=int, metavar="N", help="same as --set epochs=N")
    parser.add_argument("--image-size", type=int, metavar="PX", help="same as --set image_size=PX")
    parser.add_argument("--limit", metavar="N", help="same as --set limit=N: N images per split (quick runs)")
    parser.add_argument("--out", type=Path, help="study folder (default: studies/<grid>)")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="run only these variants of the grid")
    parser.add_argument("--external", action="append", default=[], metavar="NAME=CSV",
                        help="also score every run on a labelled CSV of images from another source "
                             "(melascan.data.labelled: path,label, PH2's labels.csv...), e.g. "
                             "ph2=../shared/data/ph2/labels.csv ham=data/mix/eval/ham_test.csv")
    parser.epilog = ("Writes OUT/<variant>/ (run folders), OUT/results.csv and OUT/results.md (test and val "
                     "metrics at P >= 0.5). Re-running the same command skips finished variants, resumes "
                     "interrupted ones and reuses their scores.")


def study_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` items plus the convenience flags (which win, coming last)."""
    items = list(args.overrides)
    for key, value in (("epochs", args.epochs), ("image_size", args.image_size), ("limit", args.limit)):
        if value is not None:
            items.append(f"{key}={value}")
    return items


def run_study(args: argparse.Namespace) -> int:
    import shlex

    from melascan.errors import DataError
    from melascan.training.config import load_config
    from melascan.training.study import run_study
    from melascan.training.study_tables import fmt, study_command

    overrides = study_overrides(args)
    base = load_config(args.config, overrides)
    out = args.out or Path("studies") / args.grid
    command = study_command(args.grid, config=args.config, overrides=overrides, out=args.out)
    external = {}
    for item in args.external:
        name, sep, path = item.partition("=")
        if not sep or not name.isidentifier() or not Path(path).is_file():
            raise DataError(f"--external expects NAME=CSV with an existing CSV, got {item!r}")
        external[name] = Path(path)
    if external:
        command += "".join(f" --external {shlex.quote(f'{n}={p}')}" for n, p in external.items())
    rows = run_study(base, args.grid, out, only=args.only, command=command, external=external)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(f"study folder: {out} (results.csv, results.md)")
    print(f"{'variant':<18}{'weights':>22}{'best':>5}{'stop':>5}{'test acc':>9}{'recall':>8}{'prec':>8}"
          f"{'F1':>8}{'AUC':>8}{'val AUC':>8}")
    for r in rows:
        print(f"{r['variant']:<18}{r['pretrained']:>22}{r['best_epoch']:>5}{r['stopped_epoch']:>5}"
              f"{fmt(r['test_accuracy']):>9}{fmt(r['test_recall']):>8}{fmt(r['test_precision']):>8}"
              f"{fmt(r['test_f1']):>8}{fmt(r['test_roc_auc']) or 'n/a':>8}{fmt(r['val_roc_auc']) or 'n/a':>8}")
    return 0
