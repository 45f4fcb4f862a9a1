"""What a site would gain from decision thresholds fitted on its own labelled images.

    .venv/bin/python benchmarks/site_thresholds.py --model src/melascan/assets/model \
        --csv ph2=../shared/data/ph2/labels.csv --csv ham_test=data/mix/eval/ham_test.csv \
        --out docs/external_validation/site_thresholds.json

The model's balanced and screening thresholds were fitted on its validation images (two
sources). For each labelled set, this fits the same two rules on half of the set and applies
them to the other half (``evaluation.selection.cross_validated_thresholds``: 2 folds x 200
random stratified splits; HAM10000 images grouped by lesion), beside the model's own thresholds
on all of the set. The ranking (ROC-AUC) is the model's either way; only where the line is drawn
changes. Reads ../shared/data through the CSVs; ONNX Runtime; decides nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from robustness import probabilities

from melascan.data.labelled import read_labelled_csv
from melascan.evaluation.selection import cross_validated_thresholds
from melascan.imageio import load_rgb
from melascan.inference import Classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="src/melascan/assets/model")
    parser.add_argument("--csv", action="append", required=True, metavar="NAME=PATH",
                        help="a labelled set (path,label[,lesion_id]); repeat")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if any("=" not in c for c in args.csv):
        parser.error("--csv expects NAME=PATH")
    clf = Classifier(args.model)
    thresholds = {name: float(clf.thresholds[name]) for name in ("balanced", "screening")}
    result = {"model": args.model, "model_thresholds": thresholds, "sets": {}}
    print("| set | threshold | model's: threshold, sens / spec | site's, out of fold: threshold range, "
          "sens / spec [split range] |")
    print("|---|---|---|---|")
    for spec in args.csv:
        name, path = spec.split("=", 1)
        images, _ = read_labelled_csv(path)
        y = np.array([int(i.label == "malignant") for i in images])
        lesions = [i.row.get("lesion_id") for i in images]
        groups = np.array(lesions) if all(lesions) else None
        prob = probabilities(clf, [load_rgb(i.path) for i in images])
        out = cross_validated_thresholds(y, prob, thresholds, groups=groups, n_repeats=args.repeats)
        result["sets"][name] = {"csv": path, "grouped_by_lesion": groups is not None, **out}
        for rule in ("balanced", "screening"):
            model, site = out[rule]["model"], out[rule]["site"]
            lo, hi = out[rule]["site_threshold"]
            site_rates = " / ".join(f"{site[k]['mean']:.3f} [{site[k]['split_range'][0]:.3f}-"
                                    f"{site[k]['split_range'][1]:.3f}]" for k in ("sensitivity", "specificity"))
            print(f"| {name} ({len(y)}, {int(y.sum())} mal.) | {rule} | {thresholds[rule]:.3f}: "
                  f"{model['sensitivity']:.3f} / {model['specificity']:.3f} | {lo:.3f}-{hi:.3f}: {site_rates} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
