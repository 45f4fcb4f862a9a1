"""Out-of-scope rejection rates of a model folder: generated non-skin images and dermoscopy sets.

Also the share of in-scope dermoscopy images the card's familiar cut calls unfamiliar (no
reassuring level in the app; ``melascan.inference.scope.familiar_cut``).

    .venv/bin/python benchmarks/scope_rates.py                                   # embedded model
    .venv/bin/python benchmarks/scope_rates.py --model DIR --csv ph2=../shared/data/ph2/labels.csv \
        --csv ham_test=data/mix/eval/ham_test.csv --split seed_test=test --out docs/scope_rates.json

Non-skin images come from ``melascan.evaluation.nonskin`` (made on the spot: text, flat colours,
noise, scikit-image's photos). Dermoscopy sets are labelled CSVs (``melascan.data.labelled``) or a
split of the manifest the model card names. Reads ``../shared/data`` only through the CSVs given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def scope_flags(clf, images: list[np.ndarray], batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``(rejected, unfamiliar)``: the scope detector rejects the image; it keeps the image but
    finds it unlike the validation images (``familiar`` False)."""
    preds = []
    for start in range(0, len(images), batch):
        preds += clf.predict_rgbs(images[start : start + batch])
    rejected = np.array([p.in_scope is False for p in preds])
    return rejected, ~rejected & np.array([p.familiar is False for p in preds])


def main() -> None:
    from melascan.data.labelled import read_labelled_csv
    from melascan.data.manifest import read_manifest
    from melascan.evaluation.nonskin import non_skin_images
    from melascan.imageio import load_rgb
    from melascan.inference import Classifier
    from melascan.inference.classifier import default_model_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    parser.add_argument("--csv", action="append", default=[], metavar="NAME=CSV", help="a labelled dermoscopy CSV")
    parser.add_argument("--split", action="append", default=[], metavar="NAME=SPLIT",
                        help="a split of the manifest named by the model card")
    parser.add_argument("--out", type=Path, help="write the rates as JSON")
    args = parser.parse_args()
    clf = Classifier(args.model or default_model_dir())
    if clf.scope is None:
        raise SystemExit(f"{clf.model_dir}: this model has no scope detector")
    generated = non_skin_images()
    rejected, _ = scope_flags(clf, list(generated.values()))
    result = {"model": str(clf.model_dir), "threshold": clf.scope.threshold, "familiar_below": clf.familiar_below,
              "non_skin": {"images": len(generated), "rejected": int(rejected.sum()),
                           "rejected_rate": float(rejected.mean()),
                           "kept": [n for n, r in zip(generated, rejected) if not r]},
              "dermoscopy": {}}
    sets = {}
    for item in args.csv:
        name, _, path = item.partition("=")
        sets[name] = [i.path for i in read_labelled_csv(path)[0]]
    for item in args.split:
        name, _, split = item.partition("=")
        manifest = read_manifest(clf.card["training"]["data_manifest"])
        sets[name] = manifest.files(split)
    for name, paths in sets.items():
        r, u = scope_flags(clf, [load_rgb(p) for p in paths])
        result["dermoscopy"][name] = {"images": len(paths), "rejected": int(r.sum()), "rejected_rate": float(r.mean()),
                                      "unfamiliar": int(u.sum()), "unfamiliar_rate": float(u.mean())}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
