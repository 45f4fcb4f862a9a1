"""Evaluate what ships: an exported model folder (ONNX + card, with its scope detector and
fusion), torch-free, on a manifest split, a labelled folder or a labelled CSV.

Unlike ``evaluate_run`` nothing is fitted here: temperature, thresholds, fusion and the
scope threshold all come from the card (chosen on validation at export time), so the same
thresholds are used on every set. Each image goes through ``Classifier.predict_rgbs``,
as in ``melascan predict`` and the web app.

Written to ``out``: ``metrics.json`` (the shipped output and the network alone, each with
95 % bootstrap CIs; the out-of-scope rejection rate; the same metrics without the images
the leakage guard found in the model's train/val data; ``site_thresholds``: what the set's
own balanced and screening thresholds would give, fitted on half of it and scored on the
other half, ``evaluation.selection.cross_validated_thresholds``) and ``predictions.csv``.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from melascan.data.manifest import read_manifest
from melascan.errors import DataError, ImageError
from melascan.evaluation import metrics as M
from melascan.evaluation.selection import cross_validated_thresholds
from melascan.evaluation.targets import (
    Target, csv_target, find_seen, folder_target, leakage_summary, split_hashes, split_target,
)
from melascan.inference import card as model_card
from melascan.serialization import json_safe

log = logging.getLogger(__name__)


def probability_logits(p: np.ndarray) -> np.ndarray:
    """``(N, 2)`` logits whose softmax at T = 1 gives back probabilities ``p``."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.stack([np.zeros_like(p), np.log(p / (1 - p))], axis=1)


def score_probabilities(y: np.ndarray, p: np.ndarray, thresholds: dict, *, n_bootstrap: int, seed: int) -> dict:
    """Ranking metrics and metrics at 0.5 and each named threshold."""
    out = {"ranking": M.ranking_metrics(y, p, n_bootstrap=n_bootstrap, seed=seed), "thresholds": {}}
    for name, t in {"0.5": 0.5, **thresholds}.items():
        out["thresholds"][name] = M.threshold_metrics(y, p, t, n_bootstrap=n_bootstrap, seed=seed)
    return out


#: A set needs this many melanomas (and benign lesions) before its own thresholds are fitted out of fold.
SITE_MIN_PER_CLASS = 10


def site_thresholds(y: np.ndarray, p: np.ndarray, thresholds: dict, groups=None, seed: int = 0) -> dict:
    """``cross_validated_thresholds`` of the balanced and screening rules on this set (2 folds x 200),
    or the reason it was not fitted."""
    counts = {"malignant": int(y.sum()), "benign": int((y == 0).sum())}
    if min(counts.values()) < SITE_MIN_PER_CLASS:
        return {"fitted": False, "reason": f"needs at least {SITE_MIN_PER_CLASS} images of each class ({counts})"}
    named = {k: thresholds[k] for k in ("balanced", "screening")}
    return {"fitted": True, **cross_validated_thresholds(y, p, named, groups=groups, seed=seed)}


def predict_target(clf, target: Target, *, progress: bool = False) -> dict:
    """Shipped probability, network probability and in-scope flag of every target image."""
    from tqdm import tqdm

    from melascan.imageio import load_rgb

    rows = []
    for index, (path, label) in enumerate(tqdm(list(zip(target.files(), target.labels)), disable=not progress,
                                               unit="img")):
        try:
            rgb = load_rgb(path)
        except ImageError as exc:
            log.warning("skipped: %s", exc)
            continue
        p = clf.predict_rgbs([rgb])[0]
        rows.append({"index": index, "path": str(path), "label": int(label), "probability": p.probability,
                     "network_probability": p.network_probability if p.fused else p.probability,
                     "in_scope": p.in_scope, "scope_score": p.scope_score, "familiar": p.familiar})
    if not rows:
        raise DataError(f"{target.name}: no readable image")
    return {key: np.array([r[key] for r in rows]) for key in rows[0]}


def _training_manifest(card: dict):
    """The manifest the card says the model was trained on, or None where it is not on this machine."""
    path = (card.get("training") or {}).get("data_manifest")
    return read_manifest(path) if path and Path(path).is_file() else None


def _guard(manifest, target: Target, images: dict | None, max_distance: int):
    """Leakage guard against the train/val images of the model's training manifest."""
    if images is None or manifest is None:
        return None, None
    leaked, rows = find_seen(target, images, manifest, max_distance)
    return leaked, leakage_summary(target, leaked, rows, max_distance=max_distance)


def evaluate_bundle(model: str | Path, out: str | Path, *, split: str | None = None, folder=None, csv_file=None,
                    name: str | None = None, n_bootstrap: int = M.N_BOOTSTRAP, seed: int = M.BOOTSTRAP_SEED,
                    max_distance: int | None = None, workers: int = 1, progress: bool = False) -> dict:
    """Score an exported model folder on one labelled set (see module doc); returns metrics.json."""
    from melascan.data.dedup import DEFAULT_MAX_DISTANCE
    from melascan.inference.classifier import Classifier

    clf = Classifier(model)
    max_distance = DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
    manifest = _training_manifest(clf.card)  # read once: split target and leakage guard
    if csv_file is not None:
        target, images = csv_target(csv_file, name, workers=workers)
    elif folder is not None:
        target, images = folder_target(folder, name, workers=workers)
    else:
        if manifest is None:
            raise DataError(f"{model}: the card names no readable training manifest; use --csv or --folder")
        target = split_target(manifest, split or "test")
        target.name = name or target.name
        images = split_hashes(manifest, target)
    leaked, leakage = _guard(manifest, target, images, max_distance)
    pred = predict_target(clf, target, progress=progress)
    y = pred["label"]
    thresholds = model_card.decision_thresholds(clf.card)
    result: dict = {
        "name": target.name, "source": target.source, "model": str(model), "model_sha256": clf.card["files"]["onnx"]["sha256"],
        "n_images": int(len(y)), "n_malignant": int(y.sum()), "skipped": target.skipped,
        "thresholds_from": "the model card (chosen on validation at export time)",
        "shipped": score_probabilities(y, pred["probability"], thresholds, n_bootstrap=n_bootstrap, seed=seed),
        "fused": bool(clf.fusion),
    }
    if clf.fusion:
        result["network"] = score_probabilities(y, pred["network_probability"], dict(clf.thresholds),
                                                n_bootstrap=n_bootstrap, seed=seed)
    if clf.scope is not None:
        inside = pred["in_scope"].astype(bool)
        result["scope"] = {"rejected": int((~inside).sum()), "rejected_rate": float(np.mean(~inside)),
                           "threshold": clf.scope.threshold}
        if clf.familiar_below is not None:  # in scope, but unlike the validation images (no reassuring level)
            unfamiliar = inside & np.array([f is not None and not f for f in pred["familiar"]])  # numpy bools
            result["scope"].update(familiar_below=clf.familiar_below, unfamiliar=int(unfamiliar.sum()),
                                   unfamiliar_rate=float(np.mean(unfamiliar)))
    kept = pred["index"]
    result["site_thresholds"] = site_thresholds(
        y, pred["probability"], thresholds, None if target.groups is None else np.asarray(target.groups)[kept], seed)
    if target.sources is not None:
        result["by_source"] = {}
        names = np.asarray(target.sources)[kept]
        for src in sorted(set(names)):
            m = names == src
            result["by_source"][src] = score_probabilities(y[m], pred["probability"][m], thresholds,
                                                           n_bootstrap=n_bootstrap, seed=seed)
    if leakage is not None:
        result["leakage"] = leakage
        leaked = leaked[kept]
        if leaked.any() and (~leaked).any():
            result["without_leaked"] = score_probabilities(y[~leaked], pred["probability"][~leaked], thresholds,
                                                           n_bootstrap=n_bootstrap, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(pred))
        for i in range(len(y)):
            writer.writerow([pred[k][i] for k in pred])
    (out / "metrics.json").write_text(json.dumps(json_safe(result), indent=2) + "\n", encoding="utf-8")
    return result


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """``predictions.csv`` as ``evaluate_bundle`` wrote it: ``label`` (int), ``probability`` and
    ``network_probability`` (float) as arrays, the other columns as strings."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DataError(f"{path}: no predictions")
    types = {"label": int, "probability": float, "network_probability": float}
    return {key: np.array([types.get(key, str)(r[key]) for r in rows]) for key in rows[0]}
