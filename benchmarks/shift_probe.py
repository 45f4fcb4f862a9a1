"""Does a model read something other than the lesion: its framing, ink, a ruler?

    .venv/bin/python benchmarks/shift_probe.py --model src/melascan/assets/model \
        --out docs/external_validation/framing_probe.json
    .venv/bin/python benchmarks/shift_probe.py --model src/melascan/assets/model \
        --shift ink_marks --shift ruler --out docs/external_validation/artefact_probe.json

Every image of a set is shown plainly and changed by each view, and the probe reports, per
class, the mean probability and the share called malignant at the model's balanced threshold,
and the ROC-AUC, per view. A model that reads lesions changes little. Default views, the
framing probe: 2/3, 1 and 1.5 times the magnification (``evaluation.shift.zoom``: the same
lesion, more or less skin around it; the shortcut audit, docs/data.md, finds melanoma-10k's
benign lesions fill far less of their pictures than its melanomas). ``--shift NAME`` (repeat)
shows the plain picture and those ``evaluation.shift.SHIFTS`` instead, e.g. ``ink_marks`` and
``ruler`` (the same marks on every picture: the painters' fixed seed). Sets: the validation
images of each training source (``--manifest``, ``--ham-val``) and PH2
(``../shared/data/ph2``; reads ../shared/data). It decides nothing.
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
from melascan.evaluation.shift import SHIFTS, zoom
from melascan.imageio import load_rgb
from melascan.inference import Classifier

#: The framing probe's views, by the key they have in its output (the magnification).
ZOOMS = {f"{factor:.2f}": (lambda rgb, f=factor: zoom(rgb, f) if f != 1 else rgb) for factor in (2 / 3, 1.0, 1.5)}


def image_sets(manifest_path: Path, ham_val: Path, ph2: Path) -> dict[str, tuple[list[Path], np.ndarray]]:
    manifest = read_manifest(manifest_path)
    seed = [r for r in manifest.subset("val") if r.source == "melanoma-10k"]
    sets = {"melanoma-10k val": ([manifest.source_root / r.path for r in seed], np.array([r.label_id for r in seed]))}
    for name, csv_path in (("HAM10000 val", ham_val), ("PH2", ph2)):
        images, _ = read_labelled_csv(csv_path)
        sets[name] = ([i.path for i in images], np.array([int(i.label == "malignant") for i in images]))
    return sets


def probe(clf: Classifier, rgbs: list[np.ndarray], y: np.ndarray, views: dict) -> dict:
    threshold = clf.thresholds["balanced"]
    out = {}
    for view, change in views.items():
        prob = probabilities(clf, [change(rgb) for rgb in rgbs])
        out[view] = {
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
    parser.add_argument("--shift", action="append", choices=sorted(SHIFTS),
                        help="show the plain picture and this shift instead of the zooms (repeat)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    views = {"plain": lambda rgb: rgb, **{name: SHIFTS[name] for name in args.shift}} if args.shift else ZOOMS
    clf = Classifier(args.model)
    result = {"model": args.model, "balanced_threshold": clf.thresholds["balanced"], "sets": {}}
    print("| set | view | ROC-AUC | benign: mean P / called malignant | melanoma: mean P / called malignant |")
    print("|---|---|---|---|---|")
    for name, (paths, y) in image_sets(args.manifest, args.ham_val, args.ph2).items():
        rows = probe(clf, [load_rgb(p) for p in paths], y, views)
        result["sets"][name] = {"images": int(len(y)), "melanomas": int(y.sum()), "views": rows}
        for view, r in rows.items():
            print(f"| {name} ({len(y)}, {int(y.sum())} mal.) | {view} | {r['roc_auc']:.3f} | "
                  f"{r['benign_mean_probability']:.3f} / {100 * r['benign_called_malignant']:.1f} % | "
                  f"{r['malignant_mean_probability']:.3f} / {100 * r['malignant_called_malignant']:.1f} % |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
