"""How much the model drops on images that look different from its training data.

Reads ../shared/data through the split manifest (default data/seed/manifest.csv).
For each exported model folder (ONNX + card, calibrated on validation) it reports on the
seed TEST split, at the card's balanced threshold:

- the plain test split;
- the held-back "looks different" slice: the test images whose mean CIELAB colour is
  farthest (Mahalanobis) from the training images' (top ``--slice-fraction``), vs the rest;
- each synthetic appearance shift of melascan.evaluation.shift (colour casts, exposure,
  contrast, phone blur + JPEG, a black dermatoscope frame, zoom, marker ink, a ruler) applied
  to every test image;
- the frame probe: benign test images without a frame, before/after painting one on
  (the dataset's malignant images carry such frames far more often: docs/data.md).

    .venv/bin/python benchmarks/robustness.py runs/A/export runs/B/export --out docs/robustness.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from melascan.data.manifest import read_manifest
from melascan.evaluation import metrics
from melascan.evaluation.shift import SHIFTS, look_distance, mean_lab
from melascan.imageio import load_rgb
from melascan.inference import Classifier


def probabilities(clf: Classifier, rgbs: list[np.ndarray], batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(rgbs), batch):
        logits, _ = clf.predict_arrays(rgbs[i : i + batch])
        out.extend(clf.prediction_from_logits(row).probability for row in logits)
    return np.asarray(out)


def scores(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    pred = metrics.predict_labels(prob, threshold)
    return {
        "n": int(len(y)),
        "auc": metrics.roc_auc(y, prob) if metrics.has_both_classes(y) else float("nan"),
        "sensitivity": metrics.sensitivity(y, pred),
        "specificity": metrics.specificity(y, pred),
        "accuracy": metrics.accuracy(y, pred),
    }


def has_frame(rgb: np.ndarray, size: int = 20, dark: int = 40) -> bool:
    """True when all four corner patches are dark (a dermatoscope's circular frame)."""
    corners = [rgb[:size, :size], rgb[:size, -size:], rgb[-size:, :size], rgb[-size:, -size:]]
    return all(float(c.mean()) < dark for c in corners)


def evaluate_model(model_dir: str, test_rgbs, y, slice_mask, benign_unframed) -> dict:
    clf = Classifier(model_dir)
    thr = clf.thresholds["balanced"]
    rows = {}
    prob = probabilities(clf, test_rgbs)
    rows["test (plain)"] = scores(y, prob, thr)
    rows["looks different (held-back slice)"] = scores(y[slice_mask], prob[slice_mask], thr)
    rows["rest of test"] = scores(y[~slice_mask], prob[~slice_mask], thr)
    for name, fn in SHIFTS.items():
        rows[f"shift: {name}"] = scores(y, probabilities(clf, [fn(r) for r in test_rgbs]), thr)
    idx = np.flatnonzero(benign_unframed)
    before = prob[idx]
    after = probabilities(clf, [SHIFTS["dermoscope_frame"](test_rgbs[i]) for i in idx])
    frame = {
        "benign_images": int(len(idx)),
        "called_malignant_before": float(np.mean(before >= thr)),
        "called_malignant_after": float(np.mean(after >= thr)),
        "mean_probability_before": float(before.mean()),
        "mean_probability_after": float(after.mean()),
    }
    return {"model": model_dir, "card": clf.summary(), "threshold": thr, "rows": rows, "frame_probe": frame}


def markdown(results: list[dict], args, seconds: float) -> str:
    lines = [
        "# Robustness to appearance shift",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on the seed TEST split ({args.manifest}, reads ../shared/data),",
        "CPU (2 cores), ONNX Runtime, each model at its card's balanced threshold (chosen on validation).",
        f"Held-back slice: the {args.slice_fraction:.0%} of test images whose mean CIELAB colour is farthest",
        "(Mahalanobis) from the training images'. Shifts: melascan/evaluation/shift.py.",
        f"Command: `.venv/bin/python benchmarks/robustness.py {' '.join(args.models)}` ({seconds:.0f} s).",
        "",
    ]
    for res in results:
        lines += [f"## {res['model']}", "", "| set | n | ROC-AUC | sensitivity | specificity | accuracy |",
                  "|---|---|---|---|---|---|"]
        for name, r in res["rows"].items():
            lines.append(f"| {name} | {r['n']} | {r['auc']:.4f} | {r['sensitivity']:.4f} | "
                         f"{r['specificity']:.4f} | {r['accuracy']:.4f} |")
        f = res["frame_probe"]
        lines += ["", f"Frame probe: {f['benign_images']} benign test images without a frame; called malignant "
                  f"{f['called_malignant_before']:.4f} before and {f['called_malignant_after']:.4f} after painting "
                  f"a black dermatoscope frame (mean P {f['mean_probability_before']:.4f} -> "
                  f"{f['mean_probability_after']:.4f}).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="exported model folders (ONNX + model_card.json)")
    parser.add_argument("--manifest", default="data/seed/manifest.csv")
    parser.add_argument("--slice-fraction", type=float, default=0.2)
    parser.add_argument("--out", type=Path, help="write the Markdown table here (and .json beside it)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    manifest = read_manifest(args.manifest)
    test_rgbs = [load_rgb(p) for p in manifest.files("test")]
    y = np.asarray(manifest.label_ids("test"))
    train_lab = np.stack([mean_lab(load_rgb(p)) for p in manifest.files("train")])
    dist = look_distance(np.stack([mean_lab(r) for r in test_rgbs]), train_lab)
    slice_mask = dist >= np.quantile(dist, 1.0 - args.slice_fraction)
    benign_unframed = (y == 0) & np.array([not has_frame(r) for r in test_rgbs])
    results = [evaluate_model(m, test_rgbs, y, slice_mask, benign_unframed) for m in args.models]
    text = markdown(results, args, time.perf_counter() - start)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
