"""Out-of-scope rejection rates of a model folder: generated non-skin images and dermoscopy sets.

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


def rejection(clf, images: list[np.ndarray], batch: int = 16) -> np.ndarray:
    """True where the model's scope detector rejects the image."""
    out = []
    for start in range(0, len(images), batch):
        out += [p.in_scope is False for p in clf.predict_rgbs(images[start : start + batch])]
    return np.array(out)


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
    rejected = rejection(clf, list(generated.values()))
    result = {"model": str(clf.model_dir), "threshold": clf.scope.threshold,
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
        r = rejection(clf, [load_rgb(p) for p in paths])
        result["dermoscopy"][name] = {"images": len(paths), "rejected": int(r.sum()), "rejected_rate": float(r.mean())}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
