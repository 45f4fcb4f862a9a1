"""Fit the two small models that ride on an exported network: scope detector and fusion.

``fit_heads(model_dir, manifest)`` runs the exported bundle (ONNX, torch-free: exactly what
ships) on the manifest's validation images and on a seeded, source-stratified sample of its
training images, then

* fits the out-of-scope detector (``melascan.inference.scope``) on the training features,
  its threshold on the validation features, and writes ``<name>_scope.npz``; with several
  sources it also records how many of each source's validation images a detector fitted
  without that source would reject;
* measures, on the validation images, the network alone against the fusion of its logit with
  the lesion measurements (``melascan.inference.fusion``), each source's ROC-AUC and their
  mean: by 5-fold cross-validation (in distribution) and, with several sources, leave one
  source out (fitted on the other sources: how the fusion carries to a new dermatoscope);
  ``verdict`` says which the rule prefers. With ``fusion=True`` the fusion model is fitted on all
  validation images, its thresholds are chosen on the cross-validated probabilities with
  each source counting the same (balanced = the mean over sources of Youden's J, screening =
  highest with sensitivity >= 95 % in every source), and it goes into the card.

Only train and val images are read: test splits and external sets never shape a choice.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from melascan.data.manifest import Manifest
from melascan.errors import ImageError
from melascan.imageio import load_rgb
from melascan.inference import card as model_card
from melascan.inference import fusion as fusion_mod
from melascan.inference.classifier import Classifier, calibrated_probability
from melascan.inference.scope import (DEFAULT_PASS_RATE, FAMILIAR_RATE, colour_statistics, familiar_cut, fit_scope,
                                     left_out_source_rates)

log = logging.getLogger(__name__)

CV_FOLDS = 5
#: ROC-AUC the fusion must gain over the network (mean over sources) to be preferred.
FUSION_MARGIN = 0.005


def run_bundle(clf: Classifier, paths: list[Path], *, lesions: bool, batch_size: int = 32,
               progress: bool = False) -> dict:
    """Network logits (N, 2), embeddings (N, E) and (``lesions``) lesion dicts for image files;
    ``ok`` marks the images that could be decoded."""
    from tqdm import tqdm

    logits, feats, colours, lesion_dicts, ok = [], [], [], [], []
    for start in tqdm(range(0, len(paths), batch_size), disable=not progress, desc="bundle", unit="batch"):
        rgbs = []
        for path in paths[start : start + batch_size]:
            try:
                rgbs.append(load_rgb(path))
                ok.append(True)
            except ImageError as exc:
                log.warning("skipped: %s", exc)
                ok.append(False)
        if not rgbs:
            continue
        z, e = clf.outputs(np.stack([clf.prepare(rgb) for rgb in rgbs]), ["logits", "embedding"])
        logits.append(z)
        feats.append(e)
        colours += [colour_statistics(rgb) for rgb in rgbs]
        if lesions:
            lesion_dicts += [clf.lesion_measurements(rgb) for rgb in rgbs]
    return {"logits": np.concatenate(logits).astype(np.float64), "embedding": np.concatenate(feats),
            "colour": np.array(colours),
            "lesions": lesion_dicts, "ok": np.array(ok)}


def source_weights(sources: np.ndarray) -> np.ndarray:
    """Weights ``1 / count(source)``, scaled to mean 1: each source counts the same."""
    _, index, counts = np.unique(sources, return_inverse=True, return_counts=True)
    w = 1.0 / counts[index]
    return w / w.mean()


def per_source_auc(y: np.ndarray, score: np.ndarray, sources: np.ndarray) -> dict:
    """``metrics.per_source_roc_auc`` rounded to 4 decimals, the mean of the rounded values (for the card)."""
    from melascan.evaluation.metrics import per_source_roc_auc

    out = {k: round(v, 4) for k, v in per_source_roc_auc(y, score, sources).items() if k != "mean"}
    out["mean"] = round(float(np.mean(list(out.values()))), 4)
    return out


def cross_validated_fusion(inputs: np.ndarray, y: np.ndarray, sources: np.ndarray, seed: int = 0) -> np.ndarray:
    """Out-of-fold fused probabilities (stratified by source and label)."""
    from sklearn.model_selection import StratifiedKFold

    strata = np.array([f"{s}:{l}" for s, l in zip(sources, y)])
    out = np.zeros(len(y))
    for train, test in StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed).split(inputs, strata):
        block = fusion_mod.fit_fusion(inputs[train], y[train], source_weights(sources[train]))
        out[test] = fusion_mod.fused_probability(block, inputs[test])
    return out


def leave_one_source_out_fusion(inputs: np.ndarray, y: np.ndarray, sources: np.ndarray) -> np.ndarray | None:
    """Each image's fused probability from a fusion fitted on the *other* sources' images
    (an out-of-source check of the fusion); None with fewer than two sources."""
    if len(np.unique(sources)) < 2:
        return None
    out = np.zeros(len(y))
    for source in np.unique(sources):
        held = sources == source
        block = fusion_mod.fit_fusion(inputs[~held], y[~held], source_weights(sources[~held]))
        out[held] = fusion_mod.fused_probability(block, inputs[held])
    return out


def fusion_verdict(comparison: dict, margin: float = FUSION_MARGIN) -> str:
    """``"fusion"`` when the leave-one-source-out fusion beats the network's mean per-source
    validation ROC-AUC by more than ``margin`` (else ``"network"``: a tie keeps the simpler)."""
    fused = comparison.get("fusion_loso") or comparison["fusion_cv"]  # one source: in-source CV only
    return "fusion" if fused["mean"] - comparison["network"]["mean"] > margin else "network"


def _sample_train(manifest: Manifest, n: int, seed: int) -> list:
    """A seeded sample of ``n`` training records, stratified by source."""
    records = manifest.subset("train")
    rng = np.random.default_rng(seed)
    by_source: dict[str, list] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    per = max(1, n // max(1, len(by_source)))
    picked = []
    for source in sorted(by_source):
        group = by_source[source]
        idx = rng.choice(len(group), size=min(per, len(group)), replace=False)
        picked += [group[i] for i in sorted(idx)]
    return picked


def fit_heads(model_dir: str | Path, manifest: Manifest, *, scope: bool = True, fusion: bool = False,
              train_images: int = 3000, seed: int = 0, progress: bool = False) -> dict:
    """Fit the scope detector and measure (and with ``fusion``, ship) the fusion; update the card."""
    from melascan.evaluation.calibration import balanced_threshold, screening_threshold

    model_dir = Path(model_dir)
    clf = Classifier(model_dir)
    card = dict(clf.card)
    card.pop("fusion", None)
    val_records = manifest.subset("val")
    val = run_bundle(clf, [manifest.source_root / r.path for r in val_records], lesions=True, progress=progress)
    y = np.array([r.label_id for r, ok in zip(val_records, val["ok"]) if ok])
    sources = np.array([r.source or "all" for r, ok in zip(val_records, val["ok"]) if ok])
    report: dict = {"validation": {"images": int(len(y)), "malignant": int(y.sum()),
                                   "by_source": {str(s): int((sources == s).sum()) for s in np.unique(sources)}}}
    if scope:
        train_records = _sample_train(manifest, train_images, seed)
        train = run_bundle(clf, [manifest.source_root / r.path for r in train_records], lesions=False,
                           progress=progress)
        detector = fit_scope(train["embedding"], val["embedding"], train["colour"], val["colour"])
        name = f"{Path(card['files']['onnx']['name']).stem}_scope.npz"
        detector.save(model_dir / name)
        card["files"] = {**card["files"], "scope": model_card.file_entry(model_dir / name)}
        card["scope"] = {
            "method": "Mahalanobis distances (Ledoit-Wolf shrinkage) of the standardised mid-level embedding "
                      f"({detector.embedding_size} channels) and of 26 colour/edge statistics, each over its "
                      "threshold; the larger ratio must be <= 1 (melascan.inference.scope)",
            "threshold": detector.threshold,
            "part_thresholds": {"network": detector.network.threshold, "colour": detector.colour.threshold},
            "fitted_on": f"{int(train['ok'].sum())} training images (seed {seed}, stratified by source)",
            "threshold_from": (f"{100 * DEFAULT_PASS_RATE:g}th percentile of the validation images' scores"
                               if DEFAULT_PASS_RATE < 1 else "the largest validation image score"),
            "val_pass_rate": float(np.mean(detector.in_scope(val["embedding"], val["colour"]))),
            "familiar_below": familiar_cut(detector.scores(val["embedding"], val["colour"])),
            "familiar_from": (f"{100 * FAMILIAR_RATE:g}th percentile of the validation images' scores: above it "
                              "(and in scope) a picture is unlike the images the model's numbers were measured on"),
        }
        train_sources = np.array([r.source or "all" for r, ok in zip(train_records, train["ok"]) if ok])
        left_out = left_out_source_rates(train["embedding"], train["colour"], train_sources,
                                         val["embedding"], val["colour"], sources)
        if left_out:
            card["scope"]["left_out_source_rejection"] = {
                "rates": {k: v["rejected"] for k, v in left_out.items()},
                "unfamiliar_rates": {k: v["unfamiliar"] for k, v in left_out.items()},
                "method": "each source's validation images, scored by a detector fitted, thresholded and given its "
                          "familiar cut on the other sources' images: what a new dermatoscope may lose (rates) and "
                          "how many of its pictures would be called unfamiliar or rejected (unfamiliar_rates); "
                          "the network saw every source"}
        report["scope"] = card["scope"]
    network_logit = val["logits"][:, 1] - val["logits"][:, 0]
    inputs = np.array([fusion_mod.lesion_inputs(z, les) for z, les in zip(network_logit, val["lesions"])])
    oof = cross_validated_fusion(inputs, y, sources, seed)
    comparison = {"network": per_source_auc(y, calibrated_probability(val["logits"], 1.0), sources),
                  "fusion_cv": per_source_auc(y, oof, sources),
                  "method": f"{CV_FOLDS}-fold cross-validation on the validation images (stratified by source "
                            "and label; images of one HAM10000 lesion may fall in different folds)"}
    loso = leave_one_source_out_fusion(inputs, y, sources)
    if loso is not None:
        comparison["fusion_loso"] = per_source_auc(y, loso, sources)
        comparison["loso_method"] = ("leave one source out: each source's validation images scored by a fusion "
                                     "fitted on the other sources' validation images")
    comparison["verdict"] = fusion_verdict(comparison)
    comparison["verdict_rule"] = (f"fusion when its mean per-source ROC-AUC (leave-one-source-out where there are "
                                  f"several sources, else {CV_FOLDS}-fold CV) beats the network's by more than "
                                  f"{FUSION_MARGIN}; otherwise the network alone")
    report["fusion_comparison"] = comparison
    if fusion:
        block = fusion_mod.fit_fusion(inputs, y, source_weights(sources))
        block["thresholds"] = {"balanced": balanced_threshold(y, oof, sources),
                               "screening": screening_threshold(y, oof, groups=sources)}
        block["thresholds_from"] = ("cross-validated fused probabilities of the validation images; balanced: "
                                    "the highest maximising the mean over sources of Youden's J; screening: the "
                                    "highest keeping sensitivity >= 95 % in every source")
        block["validation"] = comparison
        card["fusion"] = block
    model_card.write_card(card, model_dir)
    Classifier(model_dir)  # the bundle must still load
    return report
