"""Does a model read the lesion's share of the picture (the framing) as melanoma?

    .venv/bin/python benchmarks/framing_probe.py --model src/melascan/assets/model \
        --out docs/external_validation/framing_probe.json

The shortcut audit (docs/data.md, cue set ``framing``) finds that melanoma-10k's benign lesions
fill far less of their pictures than its melanomas do. This probe shows every image of a set at
2/3, 1 and 1.5 times its magnification (``evaluation.shift.zoom``: the same lesion, more or less
skin around it) and reports, per class, the mean probability and the share called malignant at
the model's balanced threshold, and the ROC-AUC at each zoom. A model that reads lesions, not
framing, changes little. Sets: the validation images of each training source (``--manifest``,
``--ham-val``) and PH2 (``../shared/data/ph2``; reads ../shared/data). It decides nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from robustness import probabilities

from melascan.data.labelled import read_labelled_csv
from melascan.data.manifest import read_manifest
from melascan.evaluation import metrics
from melascan.evaluation.shift import zoom
from melascan.imageio import load_rgb
from melascan.inference import Classifier

ZOOMS = (2 / 3, 1.0, 1.5)


def image_sets(manifest_path: Path, ham_val: Path, ph2: Path) -> dict[str, tuple[list[Path], np.ndarray]]:
    manifest = read_manifest(manifest_path)
    seed = [r for r in manifest.subset("val") if r.source == "melanoma-10k"]
    sets = {"melanoma-10k val": ([manifest.source_root / r.path for r in seed], np.array([r.label_id for r in seed]))}
    for name, csv_path in (("HAM10000 val", ham_val), ("PH2", ph2)):
        images, _ = read_labelled_csv(csv_path)
        sets[name] = ([i.path for i in images], np.array([int(i.label == "malignant") for i in images]))
    return sets


def probe(clf: Classifier, rgbs: list[np.ndarray], y: np.ndarray) -> dict:
    threshold = clf.thresholds["balanced"]
    out = {}
    for factor in ZOOMS:
        prob = probabilities(clf, [zoom(rgb, factor) if factor != 1 else rgb for rgb in rgbs])
        out[f"{factor:.2f}"] = {
            "roc_auc": metrics.roc_auc(y, prob),
            **{f"{label}_mean_probability": float(prob[y == i].mean()) for i, label in enumerate(("benign", "malignant"))},
            **{f"{label}_called_malignant": float(np.mean(prob[y == i] >= threshold))
               for i, label in enumerate(("benign", "malignant"))},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="src/melascan/assets/model")
    parser.add_argument("--manifest", type=Path, default=Path("data/mix/manifest.csv"))
    parser.add_argument("--ham-val", type=Path, default=Path("data/mix/eval/ham_val.csv"))
    parser.add_argument("--ph2", type=Path, default=Path("../shared/data/ph2/labels.csv"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    clf = Classifier(args.model)
    result = {"model": args.model, "balanced_threshold": clf.thresholds["balanced"], "sets": {}}
    print("| set | zoom | ROC-AUC | benign: mean P / called malignant | melanoma: mean P / called malignant |")
    print("|---|---|---|---|---|")
    for name, (paths, y) in image_sets(args.manifest, args.ham_val, args.ph2).items():
        rows = probe(clf, [load_rgb(p) for p in paths], y)
        result["sets"][name] = {"images": int(len(y)), "melanomas": int(y.sum()), "zooms": rows}
        for factor, r in rows.items():
            print(f"| {name} ({len(y)}, {int(y.sum())} mal.) | {factor} | {r['roc_auc']:.3f} | "
                  f"{r['benign_mean_probability']:.3f} / {100 * r['benign_called_malignant']:.1f} % | "
                  f"{r['malignant_mean_probability']:.3f} / {100 * r['malignant_called_malignant']:.1f} % |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
