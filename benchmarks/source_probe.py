"""How much of an image's source do a network's pooled features still hold?

    .venv/bin/python benchmarks/source_probe.py --model shipped=src/melascan/assets/model \
        --model D=models/ms_lite0_192ft_aux_d --out docs/external_validation/source_probe.json

For each model, the pooled features (the ONNX ``embedding``) of the validation images of
both training sources (``--manifest``'s val split: melanoma-10k and HAM10000) feed a
logistic regression that predicts the source, cross-validated (the shortcut audit's
``cross_validated_auc``: 5 folds, stratified, HAM10000 images grouped by lesion). Its ROC-AUC is reported within each class (benign only, melanomas
only: with the class fixed, whatever tells the sources apart is the collection, not the
diagnosis) and over all images. 0.5 = the features hold no trace of the source. The shortcut
audit (docs/data.md) asks the same of trivial cues. ``--short-side PX`` also shows every picture
first shrunk to at most PX on its short side (``evaluation.shift.downscale``; 150 = HAM10000's
copies), to see whether melanoma-10k's sharper pictures are what gives the source away; the
network's ROC-AUC for the label within each source is reported beside it. Reads ../shared/data (the images and
HAM10000's lesion ids); decides nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from melascan.data.audit import cross_validated_auc
from melascan.data.manifest import read_manifest
from melascan.data.mix import read_ham_metadata
from melascan.evaluation.metrics import per_source_roc_auc
from melascan.evaluation.shift import downscale
from melascan.imageio import load_rgb
from melascan.inference import Classifier


def embeddings(clf: Classifier, rgbs: list[np.ndarray], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (N, E) and the network's melanoma probability (N,) for decoded pictures."""
    feats, probs = [], []
    for i in range(0, len(rgbs), batch):
        logits, embedding = clf.outputs(np.stack([clf.prepare(rgb) for rgb in rgbs[i : i + batch]]),
                                        ["logits", "embedding"])
        feats.append(embedding)
        probs += [clf.prediction_from_logits(row).probability for row in logits]
    return np.concatenate(feats), np.asarray(probs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--manifest", type=Path, default=Path("data/mix/manifest.csv"))
    parser.add_argument("--ham", type=Path, default=Path("../shared/data/ham10000"), help="for its lesion ids")
    parser.add_argument("--short-side", type=int, metavar="PX", help="also show the pictures shrunk to PX")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if any("=" not in m for m in args.model):
        parser.error("--model expects NAME=DIR")

    manifest = read_manifest(args.manifest)
    records = manifest.subset("val")
    lesion_of = {row["image_id"]: row["lesion_id"] for row in read_ham_metadata(args.ham)}
    is_ham = np.array([r.source == "ham10000" for r in records], dtype=int)
    y = np.array([r.label_id for r in records])
    groups = np.array([lesion_of.get(Path(r.path).stem, r.path) if h else r.path for r, h in zip(records, is_ham)])
    subsets = {"benign": y == 0, "melanomas": y == 1, "all": np.ones(len(y), bool)}
    counts = {name: {"ham10000": int(is_ham[m].sum()), "melanoma-10k": int((1 - is_ham[m]).sum())}
              for name, m in subsets.items()}

    views = {"plain": lambda rgb: rgb}
    if args.short_side:
        views[f"{args.short_side} px"] = lambda rgb: downscale(rgb, args.short_side)
    rgbs = [load_rgb(manifest.source_root / r.path) for r in records]
    sources = np.where(is_ham == 1, "ham10000", "melanoma-10k")
    result = {"images": counts, "models": {}}
    print("| model | view | source ROC-AUC: benign | melanomas | all | label ROC-AUC: HAM10000 | melanoma-10k |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.model:
        name, folder = spec.split("=", 1)
        clf = Classifier(folder)
        result["models"][name] = {"model": folder, "views": {}}
        for view, change in views.items():
            embedding, probability = embeddings(clf, [change(rgb) for rgb in rgbs])
            source = {subset: cross_validated_auc(embedding[m], is_ham[m], "embedding", groups=groups[m])
                      for subset, m in subsets.items()}
            label = {k: v for k, v in per_source_roc_auc(y, probability, sources).items() if k != "mean"}
            result["models"][name]["views"][view] = {"source_roc_auc": source, "label_roc_auc": label}
            print(f"| {name} | {view} | {source['benign']:.3f} | {source['melanomas']:.3f} | {source['all']:.3f} | "
                  f"{label['ham10000']:.4f} | {label['melanoma-10k']:.4f} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
