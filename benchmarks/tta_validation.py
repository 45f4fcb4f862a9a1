"""How many test-time views to ship: validation ROC-AUC by source for 1, 2, 4 and 8 views.

    .venv/bin/python benchmarks/tta_validation.py --model src/melascan/assets/model \
        --out docs/external_validation/tta_validation.json

Scores the validation split of ``--manifest`` (reads ../shared/data through it) with the model
folder's own pre-processing, once per symmetry of the square (``preprocess.tta_views``), and
averages the logits of the first 1, 2, 4 and 8 views. The rule (validation only): the view count
with the highest mean over sources of the per-source ROC-AUC; counts within ``--tie`` of it are
ties, and the fewest views among them win (each view costs one more forward pass).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.special import expit

from melascan.data.manifest import read_manifest
from melascan.evaluation.metrics import per_source_roc_auc
from melascan.imageio import load_rgb
from melascan.inference import Classifier
from melascan.preprocess import TTA_VIEW_COUNTS, tta_views


def view_logit_margins(clf: Classifier, rgbs: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """``(8, N)`` malignant-minus-benign logits of each image under each of the 8 views."""
    out = []
    for start in range(0, len(rgbs), batch):
        x = np.stack([clf.prepare(rgb) for rgb in rgbs[start : start + batch]])
        per_view = [clf.session.run(["logits"], {clf.card["input"]["name"]: v})[0] for v in tta_views(x, 8)]
        out.append(np.stack([z[:, 1] - z[:, 0] for z in per_view]))
    return np.concatenate(out, axis=1)


def choose(means: dict[int, float], tie: float) -> int:
    """The fewest views whose mean ROC-AUC is within ``tie`` of the best."""
    best = max(means.values())
    return min(n for n, m in means.items() if best - m < tie)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="exported model folder (scored without its own views)")
    parser.add_argument("--manifest", type=Path, default=Path("data/mix/manifest.csv"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--tie", type=float, default=0.005, help="ROC-AUC differences below this are ties")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    manifest = read_manifest(args.manifest)
    records = manifest.subset(args.split)
    y = np.array([r.label_id for r in records])
    sources = np.array([r.source for r in records])
    names = sorted(set(sources))
    margins = view_logit_margins(Classifier(args.model), [load_rgb(manifest.source_root / r.path) for r in records])

    results = {}
    for n in TTA_VIEW_COUNTS:
        # P(melanoma) at T = 1: the same ranking as the mean logit
        by_source = per_source_roc_auc(y, expit(margins[:n].mean(axis=0)), sources)
        results[n] = {"mean": by_source.pop("mean"), "by_source": by_source}
    chosen = choose({n: r["mean"] for n, r in results.items()}, args.tie)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": args.model, "manifest": str(args.manifest), "split": args.split, "n_images": len(records),
        "rule": f"highest mean per-source ROC-AUC; within {args.tie} a tie, fewest views win",
        "results": {str(n): r for n, r in results.items()}, "chosen_views": chosen}, indent=2) + "\n")
    print("| views | " + " | ".join(names) + " | mean |")
    print("|---" * (len(names) + 2) + "|")
    for n, r in results.items():
        print(f"| {n}{' (chosen)' if n == chosen else ''} | "
              + " | ".join(f"{r['by_source'][s]:.4f}" for s in names) + f" | {r['mean']:.4f} |")


if __name__ == "__main__":
    main()
