"""What choosing between candidate models on an external set is worth (cross-validated).

    .venv/bin/python benchmarks/external_selection.py --set ph2 \
        --model shipped --model ms_lite0_192long --results docs/external_validation \
        --out docs/external_validation/ph2_selection.json

Reads the per-image predictions that ``benchmarks/external_validation.py`` wrote
(``<results>/<model>/<set>/predictions.csv``; no images, no ../shared needed), then reports
``melascan.evaluation.selection.cross_validated_selection`` (2-fold, stratified, 200 random
splits: the candidate with the higher ROC-AUC on one half is chosen and scored on the other) and
DeLong's test between the first two candidates on the whole set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from melascan.evaluation import bundle
from melascan.evaluation.paired import delong_test
from melascan.evaluation.selection import cross_validated_selection


def read_predictions(path: Path) -> dict[str, tuple[int, float]]:
    """image path -> (label, shipped probability) from an external-validation predictions.csv."""
    pred = bundle.read_predictions(path)
    return {str(p): (int(y), float(q)) for p, y, q in zip(pred["path"], pred["label"], pred["probability"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, help="set name, e.g. ph2")
    parser.add_argument("--model", action="append", required=True, help="model name (first = reference)")
    parser.add_argument("--results", type=Path, default=Path("docs/external_validation"))
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    files = {m: args.results / m / args.set / "predictions.csv" for m in args.model}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        parser.error(f"no predictions (run benchmarks/external_validation.py first): {', '.join(missing)}")
    preds = {m: read_predictions(f) for m, f in files.items()}
    paths = sorted(set.intersection(*(set(p) for p in preds.values())))
    if not paths:
        parser.error("the models' predictions share no image")
    y = np.array([preds[args.model[0]][p][0] for p in paths])
    scores = {m: np.array([preds[m][p][1] for p in paths]) for m in args.model}
    out = cross_validated_selection(y, scores, n_folds=args.folds, n_repeats=args.repeats)
    out.update(set=args.set, n_images=len(paths), n_malignant=int(y.sum()))
    if len(args.model) >= 2:
        out["delong"] = {"a": args.model[0], "b": args.model[1], **delong_test(y, scores[args.model[0]],
                                                                                scores[args.model[1]])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")

    print(f"{args.set}: {len(paths)} images ({int(y.sum())} malignant), {args.folds}-fold x {args.repeats}")
    print("| candidate | ROC-AUC, whole set | held-out ROC-AUC if always chosen [range over splits] | chosen in folds |")
    print("|---|---|---|---|")
    for m in args.model:
        a = out["always"][m]
        print(f"| {m} | {out['full_set_auc'][m]:.3f} | {a['mean']:.3f} [{a['split_range'][0]:.3f}-{a['split_range'][1]:.3f}] | "
              f"{100 * out['chosen'][m]:.0f} % |")
    h = out["held_out_auc"]
    print(f"| the choice (chosen on one half, scored on the other) | | {h['mean']:.3f} "
          f"[{h['split_range'][0]:.3f}-{h['split_range'][1]:.3f}] | |")
    if "delong" in out:
        print(f"DeLong {args.model[0]} - {args.model[1]}: {json.dumps(out['delong'])}")


if __name__ == "__main__":
    main()
