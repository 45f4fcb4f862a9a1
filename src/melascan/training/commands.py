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
    from melascan.training.config import config_from_dict, load_config, parse_overrides
    from melascan.training.engine import train
    from melascan.training.runs import load_config_file

    if args.resume:
        if args.config or args.out:
            raise DataError("--resume RUN_DIR continues that run with its own config.yaml; drop --config/--out")
        cfg = config_from_dict(parse_overrides(args.overrides), source="--set",
                               base=load_config_file(args.resume / "config.yaml")).validate()
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


def add_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", choices=("augment", "models", "strategies"),
                        help="augment: table-4 recipes | models: six families | strategies: sampling/loss/colour")
    parser.add_argument("--config", type=Path, help="base YAML run config (default: built-in defaults)")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override base config keys, e.g. --set epochs=20 image_size=192")
    parser.add_argument("--out", type=Path, help="study folder (default: studies/<grid>)")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="run only these variants of the grid")
    parser.epilog = "Re-running the same command skips finished variants and resumes interrupted ones."


def run_study(args: argparse.Namespace) -> int:
    from melascan.training.config import load_config
    from melascan.training.study import run_study

    base = load_config(args.config, args.overrides)
    out = args.out or Path("studies") / args.grid
    rows = run_study(base, args.grid, out, only=args.only)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(f"study folder: {out} (results.csv)")
    print(f"{'variant':<18}{'pretrained':>11}{'best':>6}{'val_loss':>10}{'val_auc':>9}{'val_f1':>8}")
    for r in rows:
        auc = "n/a" if r["val_auc"] is None or r["val_auc"] != r["val_auc"] else f"{r['val_auc']:.3f}"
        print(f"{r['variant']:<18}{r['pretrained']:>11}{r['best_epoch']:>6}{r['val_loss']:>10.4f}{auc:>9}"
              f"{r['val_f1']:>8.3f}")
    return 0
