"""Validation ROC-AUC by source under synthetic appearance shifts, for several model folders.

    .venv/bin/python benchmarks/shift_validation.py --model ms_lite0_224ft=src/melascan/assets/model \
        --model ms_lite0_192long=models/ms_lite0_192long --out docs/external_validation/shift_validation.json

A question a validation-only choice could ask: does a candidate that wins on the validation
images keep winning when they are made to look like another dermatoscope (each shift of
``melascan.evaluation.shift``: colour casts, exposure, contrast, phone blur + JPEG, a black
frame)? Scores the validation split of ``--manifest`` (reads ../shared/data through it) with
each model's own pre-processing, and prints the mean over sources of the per-source ROC-AUC for
every shift (plain first).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from robustness import probabilities

from melascan.data.manifest import read_manifest
from melascan.evaluation.metrics import per_source_roc_auc
from melascan.evaluation.shift import SHIFTS
from melascan.imageio import load_rgb
from melascan.inference import Classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--manifest", type=Path, default=Path("data/mix/manifest.csv"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    manifest = read_manifest(args.manifest)
    records = manifest.subset(args.split)
    rgbs = [load_rgb(manifest.source_root / r.path) for r in records]
    y = np.array([r.label_id for r in records])
    sources = np.array([r.source for r in records])
    shifts = {"plain": None, **SHIFTS}

    results: dict[str, dict] = {}
    for item in args.model:
        model, _, folder = item.partition("=")
        clf = Classifier(folder)
        results[model] = {}
        for shift, fn in shifts.items():
            prob = probabilities(clf, rgbs if fn is None else [fn(rgb) for rgb in rgbs])
            by_source = per_source_roc_auc(y, prob, sources)
            results[model][shift] = {"mean": by_source.pop("mean"), "by_source": by_source}
            print(f"{model} {shift}: {json.dumps(results[model][shift])}", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"manifest": str(args.manifest), "split": args.split, "n_images": len(records),
                                    "results": results}, indent=2) + "\n")
    models = list(results)
    print("\n| shift | " + " | ".join(f"{m}: mean per-source ROC-AUC" for m in models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for shift in shifts:
        print(f"| {shift} | " + " | ".join(f"{results[m][shift]['mean']:.4f}" for m in models) + " |")


if __name__ == "__main__":
    main()
