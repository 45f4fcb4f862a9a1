"""Validate melascan.lesion against the PH2 experts.

READS /work/shared/data/ph2 (override with --ph2): 100 dermoscopy images
``images/*.png``, the experts' lesion masks ``masks/*.png`` and ``labels.csv``
(diagnosis, asymmetry 0/1/2, the differential structures -- A absent, T typical, AT
atypical, P present -- and six colour columns). Also READS a seeded sample of
/work/shared/data/melanoma-10k/test (``--m10k``, labels only, never used for tuning)
as an out-of-sample check. Never used by the tests.

Measures (5-fold cross-validated unless labelled in-sample):

* segmentation Dice and Jaccard against the expert masks (mean, median, share of
  images with Jaccard < 0.65);
* A against the experts' asymmetry: weighted Cohen's kappa (sklearn, linear and
  quadratic weights) and the confusion matrix;
* C against the experts' six colour columns: per-colour precision/recall/F1, macro F1;
* B: how well the border score separates melanoma from nevi (AUC), since PH2 has no
  expert border score;
* the five differential structures against the experts: sensitivity, specificity,
  F1, Cohen's kappa (presence; atypical vs. rest; three-way for network and dots);
* TDS with the measured D and the 7-point score: ROC-AUC melanoma vs. nevi and the
  TDS band / 7-point >= 3 confusion against the diagnoses;
* ``no_lesion``: skin-only crops cut from PH2 images away from the expert mask must
  be flagged, not segmented;
* out of sample: TDS, 7-point, structures and colours on melanoma-10k test images vs.
  their benign/malignant label.

Several thresholds in ``LesionConfig`` were chosen on these same 100 images, so the
script reports an honest 5-fold cross-validated number for each tuned group: the
images are split into 5 folds stratified by diagnosis (seed 0); for each fold the
thresholds (and the small typical/atypical models of the differential structures) are
chosen on the other 4 folds only and the fold is scored with them. The CV tables are
built from these held-out predictions alone. ``--write-model`` then refits the
structure models on all 100 images (what ships in
``melascan/lesion/structure_model.json``; the thresholds to put in ``LesionConfig``
are printed) -- those fitted-on-all values are never reported as a result.

Writes the tables into docs/lesion.md between the ``<!-- ph2:begin -->`` and
``<!-- ph2:end -->`` markers (``--no-write`` to only print them).

    .venv/bin/python benchmarks/ph2_validation.py
"""

from __future__ import annotations

import argparse
import csv
import json
import itertools
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from melascan.imageio import load_rgb
from melascan.lesion import DEFAULT_CONFIG, LesionConfig, analyze_lesion
from melascan.lesion.colors import COLOR_NAMES, classify_pixels, skin_reference
from melascan.lesion.preprocessing import prepare_work
from melascan.lesion.segmentation import segment, skin_region, to_input_size
from melascan.lesion.structures import (
    PATTERN_LEVELS,
    PRESENCE,
    SEVEN_POINT_CUTOFF,
    STRUCTURE_NAMES,
    Structures,
    decide_structures,
)
from melascan.lesion.tds import tds as tds_score

ROOT = Path(__file__).resolve().parents[1]
DIAGNOSES = ("common_nevus", "atypical_nevus", "melanoma")
BANDS = ("benign", "suspicious", "melanoma")


@dataclass
class Case:
    name: str
    rgb: np.ndarray
    expert_mask: np.ndarray
    labels: dict


def load_ph2(root: Path) -> list[Case]:
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))
    cases = []
    for row in rows:
        rgb = load_rgb(root / "images" / f"{row['image']}.png")
        mask = cv2.imread(str(root / "masks" / f"{row['image']}.png"), cv2.IMREAD_GRAYSCALE) > 0
        cases.append(Case(row["image"], rgb, mask, row))
    return cases


def dice_jaccard(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    inter = float((pred & truth).sum())
    total = float(pred.sum() + truth.sum())
    union = float((pred | truth).sum())
    return (2 * inter / total if total else 1.0), (inter / union if union else 1.0)


#: Number of cross-validation folds; every tuned number is reported on held-out folds.
N_FOLDS = 5
#: Fold of every image (set by ``assign_folds``: stratified by diagnosis, seed 0).
FOLD_OF: np.ndarray | None = None


def assign_folds(strata: np.ndarray, seed: int = 0) -> np.ndarray:
    """Stratified 5-fold assignment (``StratifiedKFold``, shuffled with ``seed``)."""
    global FOLD_OF
    fold_of = np.zeros(len(strata), int)
    splitter = StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        fold_of[test] = k
    FOLD_OF = fold_of
    return fold_of


def folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``N_FOLDS`` pairs (tune on these rows, score those), from ``assign_folds``."""
    if FOLD_OF is None or len(FOLD_OF) != n:
        raise RuntimeError("assign_folds() first")
    return [(np.flatnonzero(FOLD_OF != k), np.flatnonzero(FOLD_OF == k)) for k in range(N_FOLDS)]


def f1(y: np.ndarray, p: np.ndarray) -> float:
    tp, fp, fn = int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0


# --- segmentation -------------------------------------------------------------------


def segment_all(cases: list[Case], config: LesionConfig) -> np.ndarray:
    """Dice per image for one configuration (segmentation only)."""
    scores = []
    for case in cases:
        work = prepare_work(case.rgb, config)  # the app's front end, not a copy of it
        seg = to_input_size(segment(work, config), work)
        scores.append(dice_jaccard(seg.mask, case.expert_mask)[0])
    return np.asarray(scores)


def cv_threshold_shift(cases: list[Case], config: LesionConfig, grid=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5)) -> dict:
    dice = {s: segment_all(cases, config.with_(seg_threshold_shift=s)) for s in grid}
    held_out, chosen = [], []
    for tune, score in folds(len(cases)):
        best = max(grid, key=lambda s: dice[s][tune].mean())
        chosen.append(best)
        held_out.append(dice[best][score])
    return {
        "grid_mean_dice": {s: float(d.mean()) for s, d in dice.items()},
        "chosen": [float(c) for c in chosen],
        "cv_mean_dice": float(np.concatenate(held_out).mean()),
    }


# --- features -----------------------------------------------------------------------


def analyse_all(cases: list[Case], config: LesionConfig) -> list[dict]:
    """Run analyze_lesion on every case; keep what the metrics and the CV need."""
    out = []
    for case in cases:
        t0 = time.perf_counter()
        a = analyze_lesion(case.rgb, config=config)
        ms = (time.perf_counter() - t0) * 1000
        rec = {"analysis": a, "dict": a.to_dict(), "ms": ms}
        rec["dice"], rec["jaccard"] = dice_jaccard(a.mask, case.expert_mask)
        # colour CV needs the lesion's CIELAB pixels and the skin reference: recompute
        # them with the calls analyze_lesion makes (same front end, same config)
        work = prepare_work(case.rgb, config)
        seg = segment(work, config)
        if seg.found:
            skin = skin_region(seg.mask, work.fov, config, work.hair)
            rec["lesion_lab"] = work.lab[seg.mask & ~work.hair]
            rec["skin_lab"] = skin_reference(work.lab, skin)
        out.append(rec)
    return out


def asymmetry_scores(results: list[dict], shape_t: float, color_t: float) -> np.ndarray:
    scores = []
    for r in results:
        axes = r["dict"]["asymmetry_axes"]
        if axes is None:
            scores.append(0)
            continue
        major = axes["shape_major"] > shape_t or axes["color_major_de"] > color_t
        minor = axes["shape_minor"] > shape_t or axes["color_minor_de"] > color_t
        scores.append(int(major) + int(minor))
    return np.asarray(scores)


def cv_asymmetry(results: list[dict], truth: np.ndarray) -> dict:
    shape_grid = tuple(np.round(np.arange(0.05, 0.161, 0.01), 2))
    color_grid = tuple(np.arange(5.0, 14.1, 0.5)) + (1e9,)
    combos = list(itertools.product(shape_grid, color_grid))
    pred = {c: asymmetry_scores(results, *c) for c in combos}
    held_true, held_pred, chosen = [], [], []
    per_image = np.zeros(len(results), int)
    for tune, score in folds(len(results)):
        best = max(combos, key=lambda c: cohen_kappa_score(truth[tune], pred[c][tune], weights="linear"))
        chosen.append(tuple(round(float(v), 3) for v in best))
        held_true.append(truth[score])
        held_pred.append(pred[best][score])
        per_image[score] = pred[best][score]
    t, p = np.concatenate(held_true), np.concatenate(held_pred)
    best_all = max(combos, key=lambda c: cohen_kappa_score(truth, pred[c], weights="linear"))
    return {
        "chosen": chosen,
        "cv_kappa_linear": float(cohen_kappa_score(t, p, weights="linear")),
        "cv_kappa_quadratic": float(cohen_kappa_score(t, p, weights="quadratic")),
        "best_on_all": tuple(round(float(v), 3) for v in best_all),
        "pred": per_image,
    }


#: candidate values for the colour rules (tuned coordinate-wise in precedence order)
COLOR_GRIDS = {
    "black": {"color_black_max_l": (25.0, 30.0, 35.0, 40.0), "color_black_max_chroma": (8.0, 12.0, 15.0, 20.0)},
    "blue_gray": {"color_blue_gray_max_b": (-3.0, 0.0, 3.0, 6.0, 9.0), "color_blue_gray_min_darkening": (5.0, 10.0, 20.0)},
    "white": {"color_white_max_darkening": (-5.0, 0.0, 5.0, 10.0), "color_white_min_chroma_drop": (0.0, 5.0, 10.0)},
    "dark_brown": {"color_dark_brown_max_l_ratio": (0.55, 0.6, 0.65, 0.7, 0.75)},
    "light_brown": {"color_light_brown_max_l_ratio": (0.85, 0.9, 0.95)},
}
FRACTION_GRID = (0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def color_fraction_table(results: list[dict], config: LesionConfig) -> np.ndarray:
    """(n_images, 6) share of each colour, from the cached lesion pixels."""
    rows = []
    for r in results:
        if "lesion_lab" not in r or len(r["lesion_lab"]) == 0:
            rows.append(np.zeros(len(COLOR_NAMES)))
            continue
        index = classify_pixels(r["lesion_lab"], r["skin_lab"], config)
        counts = np.bincount(index, minlength=len(COLOR_NAMES) + 1)[1:]
        rows.append(counts / max(len(index), 1))
    return np.asarray(rows)


def tune_colors(results: list[dict], truth: np.ndarray, idx: np.ndarray, config: LesionConfig) -> LesionConfig:
    """Grid-search the colour rules and presence fractions on the images ``idx``."""
    fractions = dict(config.color_min_fraction)
    for name in ("black", "blue_gray", "white", "dark_brown", "light_brown"):  # red: by reasoning, see docs
        j = COLOR_NAMES.index(name)
        grid = COLOR_GRIDS[name]
        best = (-1.0, None, None)
        for values in itertools.product(*grid.values()):
            candidate = config.with_(**dict(zip(grid.keys(), values)))
            share = color_fraction_table([results[i] for i in idx], candidate)[:, j]
            for t in FRACTION_GRID:
                score = f1(truth[idx, j] == 1, share >= t)
                if score > best[0]:
                    best = (score, dict(zip(grid.keys(), values)), t)
        config = config.with_(**best[1])
        fractions[name] = best[2]
    return config.with_(color_min_fraction=fractions)


def color_metrics(share: np.ndarray, truth: np.ndarray, config: LesionConfig) -> dict:
    present = np.stack([share[:, j] >= max(config.color_min_fraction[n], 1e-9) for j, n in enumerate(COLOR_NAMES)], 1)
    p, r, f, support = precision_recall_fscore_support(truth, present.astype(int), average=None, zero_division=0)
    return {
        n: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "positives": int(support[j])}
        for j, n in enumerate(COLOR_NAMES)
    } | {"macro_f1": float(np.mean(f))}


def cv_colors(results: list[dict], truth: np.ndarray, config: LesionConfig) -> dict:
    chosen, fold_of = [], np.zeros(len(results), int)
    pred = np.zeros(truth.shape, bool)
    share_all = np.zeros(truth.shape)
    for k, (tune, score) in enumerate(folds(len(results))):
        tuned = tune_colors(results, truth, tune, config)
        chosen.append(tuned)
        share = color_fraction_table([results[i] for i in score], tuned)
        pred[score] = np.stack([share[:, j] >= tuned.color_min_fraction[n] for j, n in enumerate(COLOR_NAMES)], 1)
        share_all[score] = share
        fold_of[score] = k
    p, r, f, _ = precision_recall_fscore_support(truth, pred.astype(int), average=None, zero_division=0)
    tuned_all = tune_colors(results, truth, np.arange(len(results)), config)
    return {
        "pred": pred,
        "share": share_all,
        "per_color_precision": dict(zip(COLOR_NAMES, map(float, p))),
        "per_color_recall": dict(zip(COLOR_NAMES, map(float, r))),
        "per_color_f1": dict(zip(COLOR_NAMES, map(float, f))),
        "macro_f1": float(np.mean(f)),
        "chosen": chosen,
        "tuned_on_all": tuned_all,
    }


def cv_border(results: list[dict], is_melanoma: np.ndarray, grid=(2, 3, 4, 5, 6, 7, 8, 10, 12, 15)) -> dict:
    """PH2 has no expert B: choose the abrupt-slope threshold that best separates melanoma
    from nevi (AUC of B) on 4 folds, score on the fifth (mean fold AUC)."""
    slopes = np.asarray([r["dict"]["border_octant_slopes"] or [0.0] * 8 for r in results], float)
    auc = {}
    for t in grid:
        b = (slopes > t).sum(axis=1)
        auc[t] = b
    held = []
    chosen = []
    per_image = np.zeros(len(results), int)
    for tune, score in folds(len(results)):
        best = max(grid, key=lambda t: roc_auc_score(is_melanoma[tune], auc[t][tune]))  # first of ties
        chosen.append(float(best))
        held.append(roc_auc_score(is_melanoma[score], auc[best][score]))
        per_image[score] = auc[best][score]
    return {"chosen": chosen, "cv_auc": float(np.mean(held)), "pred": per_image, "auc_by_threshold": {t: float(roc_auc_score(is_melanoma, b)) for t, b in auc.items()}}


# --- differential structures, 7-point, TDS with measured D ---------------------------

#: PH2 column of each structure; the three-way ones use A / T / AT, the others A / P.
STRUCTURE_COLUMNS = {
    "pigment_network": "pigment_network",
    "dots_globules": "dots_globules",
    "streaks": "streaks",
    "regression": "regression_areas",
    "blue_whitish_veil": "blue_whitish_veil",
}
EXPERT_LEVEL = {"A": "absent", "T": "typical", "AT": "atypical"}
#: Binary presence decisions whose threshold is chosen per fold (F1 on the tuning folds).
#: Pigment network presence is not tuned: PH2 has no lesion without a network.
TUNED_PRESENCE = ("dots_globules", "streaks", "regression", "blue_whitish_veil")
#: Features of the typical/atypical logistic models (structure's own irregularity +
#: lesion-level heterogeneity, see melascan.lesion.structures.LESION_CONTEXT).
ATYPIA_FEATURES = {
    "pigment_network": ["lesion_shape_asymmetry", "lesion_color_asymmetry_de", "lesion_colors",
                        "lesion_blue_gray_fraction", "network_hole_area_cv", "network_sector_cv"],
    "dots_globules": ["lesion_shape_asymmetry", "lesion_color_asymmetry_de", "dots_area_cv",
                      "dots_peripheral_share", "dots_offset"],
}


def expert_structures(cases: list[Case]) -> list[dict]:
    """The experts' labels in the ``lesion.structures`` vocabulary."""
    out = []
    for case in cases:
        row = {}
        for name, column in STRUCTURE_COLUMNS.items():
            value = case.labels[column]
            row[name] = EXPERT_LEVEL[value] if name in ("pigment_network", "dots_globules") else value == "P"
        out.append(row)
    return out


def best_threshold(values: np.ndarray, truth: np.ndarray) -> float:
    """The presence threshold with the best F1 on these images (midpoints between the
    sorted distinct values; ties go to the higher threshold, the fewer false alarms)."""
    v = np.unique(values)
    candidates = np.concatenate([(v[:-1] + v[1:]) / 2, [v[-1] + 1e-6]]) if v.size > 1 else v
    scores = [(f1(truth, values >= t), t) for t in candidates]
    return float(max(scores)[1])


def fit_logistic(x: np.ndarray, y: np.ndarray, names: list[str]) -> dict:
    """Standardised L2 logistic regression (C = 1, balanced classes) as the JSON model
    ``melascan.lesion.structures.atypia_probability`` reads."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit((x - mean) / scale, y)
    return {
        "features": list(names),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
    }


def fit_structures(features: list[dict], truth: list[dict], idx: np.ndarray, config: LesionConfig) -> tuple[LesionConfig, dict]:
    """Presence thresholds and typical/atypical models chosen on the images ``idx``."""
    changes = {}
    for name in TUNED_PRESENCE:
        key, threshold_name = PRESENCE[name]
        values = np.array([features[i][key] for i in idx])
        present = np.array([truth[i][name] not in (False, "absent") for i in idx])
        changes[threshold_name] = best_threshold(values, present)
    model = {}
    for name, names in ATYPIA_FEATURES.items():
        rows = [i for i in idx if truth[i][name] != "absent"]
        x = np.array([[features[i][k] for k in names] for i in rows], float)
        y = np.array([truth[i][name] == "atypical" for i in rows])
        model[name] = fit_logistic(x, y, names)
    return config.with_(**changes), model


def fmt(value: float) -> str:
    """Two decimals, ``n/a`` when undefined (e.g. specificity without negatives)."""
    return "n/a" if value != value else f"{value:.2f}"


def binary_metrics(truth: np.ndarray, pred: np.ndarray) -> dict:
    tp, fp = int((truth & pred).sum()), int((~truth & pred).sum())
    fn, tn = int((truth & ~pred).sum()), int((~truth & ~pred).sum())
    return {
        "positives": int(truth.sum()),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "f1": f1(truth, pred),
        "kappa": float(cohen_kappa_score(truth, pred)) if len(set(truth)) > 1 else float("nan"),
    }


def structure_metrics(truth: list[dict], pred: list[dict]) -> dict:
    """Per structure: binary presence (and, for the three-way ones, atypical-vs-rest)
    sensitivity / specificity / F1 / kappa, three-way kappa and class-macro F1; and the
    structures macro F1 = mean of (three-way class-macro F1 for network and dots, F1
    for the others)."""
    out = {}
    for name in STRUCTURE_NAMES:
        t = [row[name] for row in truth]
        p = [row[name] for row in pred]
        if name in ("pigment_network", "dots_globules"):
            t, p = np.array(t), np.array(p)
            labels = [v for v in PATTERN_LEVELS if v in set(t)]
            _, _, f, _ = precision_recall_fscore_support(t, p, labels=labels, average=None, zero_division=0)
            out[name] = {
                "three_way_kappa": float(cohen_kappa_score(t, p, labels=list(PATTERN_LEVELS))),
                "three_way_macro_f1": float(np.mean(f)),
                "class_f1": dict(zip(labels, map(float, f))),
                "confusion": confusion_matrix(t, p, labels=list(PATTERN_LEVELS)).tolist(),
                "present": binary_metrics(t != "absent", p != "absent"),
                "atypical": binary_metrics(t == "atypical", p == "atypical"),
            }
            out[name]["f1"] = out[name]["three_way_macro_f1"]
        else:
            out[name] = binary_metrics(np.array(t, bool), np.array(p, bool))
    out["macro_f1"] = float(np.mean([out[n]["f1"] for n in STRUCTURE_NAMES]))
    return out


def seven_point_of(decisions: dict) -> int:
    return Structures(**decisions, scores={}, atypia={}, features={}).seven_point


def stolz_d_of(decisions: dict) -> int:
    return Structures(**decisions, scores={}, atypia={}, features={}).stolz_d


def with_color_context(features: dict, share: np.ndarray, present: np.ndarray) -> dict:
    """``features`` with the colour-derived context recomputed from this fold's colour
    rules (so no colour threshold tuned on the scored images leaks in)."""
    out = dict(features)
    out["lesion_colors"] = float(present.sum())
    out["lesion_blue_gray_fraction"] = float(share[COLOR_NAMES.index("blue_gray")])
    out["lesion_white_fraction"] = float(share[COLOR_NAMES.index("white")])
    out["regression_fraction"] = out["regression_white_fraction"] + out["lesion_blue_gray_fraction"]
    return out


def cv_structures(results: list[dict], cases: list[Case], config: LesionConfig, colors_cv: dict) -> dict:
    """Held-out structure decisions: per fold, thresholds and models from the other folds.

    The colour-derived features of every image come from the colour rules tuned on
    the same 4 folds (``colors_cv["chosen"]``), so nothing tuned on the scored fold
    leaks in."""
    raw = [r["analysis"].structures.features if r["analysis"].structures else None for r in results]
    truth = expert_structures(cases)
    usable = np.array([f is not None for f in raw])
    absent = dict.fromkeys(STRUCTURE_NAMES, False) | {"pigment_network": "absent", "dots_globules": "absent"}
    pred: list[dict] = [dict(absent) for _ in results]
    chosen = []
    features: list = list(raw)
    for k, (tune, score) in enumerate(folds(len(results))):
        fold_colors = colors_cv["chosen"][k]
        share = color_fraction_table(results, fold_colors)
        present = np.stack([share[:, j] >= fold_colors.color_min_fraction[n] for j, n in enumerate(COLOR_NAMES)], 1)
        features = [None if f is None else with_color_context(f, share[i], present[i]) for i, f in enumerate(raw)]
        tuned, model = fit_structures(features, truth, tune[usable[tune]], config)
        chosen.append({PRESENCE[n][1]: round(getattr(tuned, PRESENCE[n][1]), 4) for n in TUNED_PRESENCE})
        for i in score:
            if features[i] is not None:
                pred[i] = decide_structures(features[i], tuned, model)[0]
    return {"pred": pred, "truth": truth, "metrics": structure_metrics(truth, pred), "chosen": chosen}


def cv_scores(cases: list[Case], results: list[dict], asym_cv: dict, border_cv: dict, colors_cv: dict,
              struct_cv: dict) -> dict:
    """TDS (A, B, C, measured D all held-out) and 7-point score vs. the diagnoses;
    the same with the experts' structures, for reference."""
    diagnosis = np.array([c.labels["diagnosis"] for c in cases])
    is_mel = diagnosis == "melanoma"
    found = np.array([r["analysis"].found for r in results])
    seven = np.array([seven_point_of(p) for p in struct_cv["pred"]])
    seven_expert = np.array([seven_point_of(t) for t in struct_cv["truth"]])
    tds_values, bands, tds_expert_d = [], [], []
    for i in range(len(cases)):
        if not found[i]:
            tds_values.append(np.nan), bands.append("none"), tds_expert_d.append(np.nan)
            continue
        a, b, c = int(asym_cv["pred"][i]), int(border_cv["pred"][i]), int(colors_cv["pred"][i].sum())
        t = tds_score(a, b, c, stolz_d_of(struct_cv["pred"][i]), "measured")
        tds_values.append(t.value), bands.append(t.band)
        tds_expert_d.append(tds_score(a, b, c, stolz_d_of(struct_cv["truth"][i]), "given").value)
    tds_values, bands, tds_expert_d = np.array(tds_values), np.array(bands), np.array(tds_expert_d)
    table = {}
    for d in DIAGNOSES:
        sel = diagnosis == d
        table[d] = {b: int((bands[sel] == b).sum()) for b in (*BANDS, "none")} | {
            "n": int(sel.sum()),
            "mean_tds": float(np.nanmean(tds_values[sel])),
            "seven_suspicious": int((seven[sel] >= SEVEN_POINT_CUTOFF).sum()),
            "mean_seven": float(seven[sel].mean()),
            "seven_hist": np.bincount(seven[sel], minlength=8).tolist(),
        }
    suspicious = seven >= SEVEN_POINT_CUTOFF
    return {
        "table": table,
        "tds_auc": float(roc_auc_score(is_mel, np.nan_to_num(tds_values))),
        "tds_sensitivity": float(np.isin(bands[is_mel], ["suspicious", "melanoma"]).mean()),
        "tds_specificity": float((bands[~is_mel] == "benign").mean()),
        "seven_auc": float(roc_auc_score(is_mel, seven)),
        "seven_sensitivity": float(suspicious[is_mel].mean()),
        "seven_specificity": float((~suspicious[~is_mel]).mean()),
        "seven_expert_auc": float(roc_auc_score(is_mel, seven_expert)),
        "tds_expert_d_auc": float(roc_auc_score(is_mel, np.nan_to_num(tds_expert_d))),
        "d_mean_by_diagnosis": {
            d: round(float(np.mean([stolz_d_of(struct_cv["pred"][i]) for i in np.flatnonzero(diagnosis == d)])), 2)
            for d in DIAGNOSES
        },
    }


def ship_structure_model(results: list[dict], cases: list[Case], config: LesionConfig, path: Path) -> LesionConfig:
    """Fit the presence thresholds and typical/atypical models on all images (what
    ships; never reported as a result), write the models to ``path``, return the config."""
    features = [r["analysis"].structures.features for r in results if r["analysis"].structures]
    truth = [t for t, r in zip(expert_structures(cases), results) if r["analysis"].structures]
    tuned, model = fit_structures(features, truth, np.arange(len(features)), config)
    path.write_text(json.dumps(model, indent=1) + "\n")
    return tuned


def skin_crops(cases: list[Case], size: int = 128) -> list[np.ndarray]:
    """One skin-only crop per PH2 image where one fits: no expert-mask pixel within
    20 px, inside the central part of the view (clear of the vignette), even lighting."""
    crops = []
    for case in cases:
        h, w = case.expert_mask.shape
        brightness = case.rgb.max(axis=2).astype(np.float32)
        found = None
        for y in range(60, h - size - 60, 16):
            for x in range(60, w - size - 60, 16):
                corners = [(y, x), (y + size, x), (y, x + size), (y + size, x + size)]
                if any(((cy - h / 2) / (h / 2)) ** 2 + ((cx - w / 2) / (w / 2)) ** 2 > 0.6 for cy, cx in corners):
                    continue
                if case.expert_mask[max(0, y - 20) : y + size + 20, max(0, x - 20) : x + size + 20].any():
                    continue
                v = brightness[y : y + size, x : x + size]
                if np.percentile(v, 1) < 0.8 * np.median(v):
                    continue
                found = case.rgb[y : y + size, x : x + size]
                break
            if found is not None:
                break
        if found is not None:
            crops.append(np.ascontiguousarray(found))
    return crops


def external_check(folder: Path, per_class: int, config: LesionConfig) -> dict | None:
    """TDS and colours on a seeded sample of melanoma-10k test images (labels only)."""
    if per_class <= 0 or not folder.is_dir():
        return None
    rng = np.random.default_rng(0)
    out = {}
    values, sevens, labels = [], [], []
    for label in ("benign", "malignant"):
        files = sorted((folder / label).glob("*.jpg"))
        files = [files[i] for i in sorted(rng.choice(len(files), min(per_class, len(files)), replace=False))]
        bands, colors, none = {b: 0 for b in BANDS}, {n: 0 for n in COLOR_NAMES}, 0
        structures, suspicious = {n: 0 for n in STRUCTURE_NAMES}, 0
        for f in files:
            d = analyze_lesion(load_rgb(f), config=config).to_dict()
            if d["tds"] is None:
                none += 1
                continue
            bands[d["tds_band"]] += 1
            for c in d["colors"]:
                colors[c] += 1
            for n, v in d["structures"].items():
                structures[n] += v not in (False, "absent")
            suspicious += bool(d["seven_point_suspicious"])
            values.append(d["tds"])
            sevens.append(d["seven_point"])
            labels.append(label == "malignant")
        out[label] = {"n": len(files), "no_lesion": none, "bands": bands, "colors": colors,
                      "structures": structures, "seven_suspicious": suspicious}
    out["auc"] = float(roc_auc_score(labels, values))
    out["seven_auc"] = float(roc_auc_score(labels, sevens))
    return out


# --- report -------------------------------------------------------------------------


def markdown(report: dict) -> str:
    s, a, c = report["seg"], report["asym"], report["colors"]
    def verdict(value: float, goal: float) -> str:
        return "met" if value >= goal else "**not met**"

    sm, sc = report["structures"]["metrics"], report["scores_cv"]
    lines = [
        "Targets (all 5-fold cross-validated): "
        f"colour macro F1 >= 0.70: {verdict(c['cv']['macro_f1'], 0.70)} ({c['cv']['macro_f1']:.3f}); "
        f"structures macro F1 >= 0.65: {verdict(sm['macro_f1'], 0.65)} ({sm['macro_f1']:.3f}); "
        f"TDS (measured D) ROC-AUC >= 0.85: {verdict(sc['tds_auc'], 0.85)} ({sc['tds_auc']:.3f}); "
        f"7-point ROC-AUC >= 0.85: {verdict(sc['seven_auc'], 0.85)} ({sc['seven_auc']:.3f}); "
        f"mean Dice >= 0.92: {verdict(s['cv']['cv_mean_dice'], 0.92)} (CV {s['cv']['cv_mean_dice']:.3f}; "
        f"shipped {s['dice_mean']:.3f}). A weighted kappa (CV, linear): {a['cv']['cv_kappa_linear']:.3f}.",
        "",
        "**Summary: 5-fold cross-validated numbers** (details below)",
        "",
        "| what | held-out value | target |",
        "|---|---|---|",
        f"| segmentation mean Dice | {s['cv']['cv_mean_dice']:.3f} | >= 0.92 |",
        f"| colour macro F1 (6 colours) | {c['cv']['macro_f1']:.3f} | >= 0.70 |",
        f"| colour macro F1 without red | {np.mean([c['cv']['per_color_f1'][n] for n in COLOR_NAMES if n != 'red']):.3f} | |",
        f"| structures macro F1 | {sm['macro_f1']:.3f} | >= 0.65 |",
        f"| TDS (measured D) ROC-AUC, melanoma vs. nevi | {sc['tds_auc']:.3f} | >= 0.85 |",
        f"| 7-point ROC-AUC, melanoma vs. nevi | {sc['seven_auc']:.3f} | >= 0.85 |",
        f"| 7-point >= 3: sensitivity / specificity | {sc['seven_sensitivity']:.2f} / {sc['seven_specificity']:.2f} | |",
        f"| A linear weighted kappa | {a['cv']['cv_kappa_linear']:.3f} | |",
        "",
        f"Measured {report['date']} on {report['machine']} with `DEFAULT_CONFIG` "
        f"(working size {report['work_side_px']} px), command: `{report['command']}` "
        f"({report['seconds']:.0f} s).",
        "",
        "**Segmentation** (100 images, expert masks)",
        "",
        "| metric | value |",
        "|---|---|",
        f"| Dice mean / median | {s['dice_mean']:.3f} / {s['dice_median']:.3f} |",
        f"| Jaccard mean / median | {s['jaccard_mean']:.3f} / {s['jaccard_median']:.3f} |",
        f"| share with Jaccard < 0.65 | {s['jaccard_below_065']:.2f} |",
        f"| images flagged no_lesion | {s['no_lesion']} |",
        f"| 5-fold CV Dice mean (threshold shift tuned per fold: {s['cv']['chosen']}) | {s['cv']['cv_mean_dice']:.3f} |",
        "",
        "Dice by threshold shift: "
        + ", ".join(f"{k}: {v:.3f}" for k, v in s["cv"]["grid_mean_dice"].items()),
        "",
        "**A (asymmetry) vs. the experts' 0/1/2**",
        "",
        f"Weighted Cohen's kappa of the shipped thresholds (in-sample): linear {a['kappa_linear']:.3f}, "
        f"quadratic {a['kappa_quadratic']:.3f}; **5-fold CV linear {a['cv']['cv_kappa_linear']:.3f}**, "
        f"quadratic {a['cv']['cv_kappa_quadratic']:.3f} "
        f"(thresholds chosen per fold (shape, colour dE): {a['cv']['chosen']}).",
        "",
        "Confusion of the shipped thresholds (in-sample):",
        "",
        "| experts \\ ours | 0 | 1 | 2 |",
        "|---|---|---|---|",
    ]
    for i, row in enumerate(a["confusion"]):
        lines.append(f"| {i} | " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        "**C (colours) vs. the experts' six colour columns**",
        "",
        "| colour | positives | CV precision | CV recall | **CV F1** | F1 of the shipped rules on all 100 (in-sample) |",
        "|---|---|---|---|---|---|",
    ]
    for n in COLOR_NAMES:
        m, cv = c[n], c["cv"]
        lines.append(
            f"| {n} | {m['positives']} | {cv['per_color_precision'][n]:.2f} | {cv['per_color_recall'][n]:.2f} | "
            f"**{cv['per_color_f1'][n]:.2f}** | {m['f1']:.2f} |"
        )
    no_red = [n for n in COLOR_NAMES if n != "red"]
    lines += [
        f"| **macro** | | | | **{c['cv']['macro_f1']:.3f}** | {c['macro_f1']:.3f} |",
        "",
        "Macro F1 over the five colours other than red (PH2 has only 4 red lesions): "
        f"{np.mean([c[n]['f1'] for n in no_red]):.3f}, CV {np.mean([c['cv']['per_color_f1'][n] for n in no_red]):.3f}.",
        "",
        "**B (border)**: PH2 has no expert border score. AUC of B for melanoma vs. nevi: "
        f"{report['border']['auc']:.3f} with the shipped threshold; 5-fold CV of the threshold "
        f"choice: {report['border']['cv']['cv_auc']:.3f} (chosen {report['border']['cv']['chosen']}). "
        f"Mean B per diagnosis: {report['border']['mean_by_diagnosis']}.",
        "",
        "**Differential structures vs. the experts** (5-fold CV: every decision below was made with "
        "presence thresholds and typical/atypical models fitted on the other 4 folds)",
        "",
        "| structure | experts positive | sensitivity | specificity | F1 | Cohen's kappa |",
        "|---|---|---|---|---|---|",
    ]
    sm = report["structures"]["metrics"]
    for name in STRUCTURE_NAMES:
        m = sm[name]
        if name in ("pigment_network", "dots_globules"):
            for part in ("present", "atypical"):
                q = m[part]
                lines.append(
                    f"| {name}: {part} | {q['positives']} | {fmt(q['sensitivity'])} | {fmt(q['specificity'])} | "
                    f"{q['f1']:.2f} | {fmt(q['kappa'])} |"
                )
            lines.append(
                f"| {name}: absent / typical / atypical | | | | class-macro {m['three_way_macro_f1']:.2f} "
                f"({', '.join(f'{k} {v:.2f}' for k, v in m['class_f1'].items())}) | {m['three_way_kappa']:.2f} |"
            )
        else:
            lines.append(
                f"| {name} | {m['positives']} | {fmt(m['sensitivity'])} | {fmt(m['specificity'])} | {m['f1']:.2f} | "
                f"{fmt(m['kappa'])} |"
            )
    lines += [
        "",
        f"Structures macro F1 (mean of the class-macro F1 of network and dots/globules and the F1 of "
        f"streaks, regression, veil): **{sm['macro_f1']:.3f}**. Presence thresholds chosen per fold: "
        f"{report['structures']['chosen']}.",
        "",
        "Confusion, experts (rows) vs. ours (columns), absent / typical / atypical:",
        "",
    ]
    for name in ("pigment_network", "dots_globules"):
        conf = sm[name]["confusion"]
        lines.append(f"{name}: " + "; ".join(f"{PATTERN_LEVELS[i]} {row}" for i, row in enumerate(conf)))
        lines.append("")
    sc = report["scores_cv"]
    lines += [
        "**TDS with measured D and the 7-point checklist vs. diagnosis** (5-fold CV: A, B, C and "
        "D of each image from thresholds/models chosen on the other folds)",
        "",
        "| diagnosis | n | TDS benign | suspicious | melanoma | no lesion | mean TDS | 7-point >= 3 | mean 7-point | "
        "7-point 0/1/2/3/4/5/6/7 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in DIAGNOSES:
        row = sc["table"][d]
        lines.append(
            f"| {d} | {row['n']} | {row['benign']} | {row['suspicious']} | {row['melanoma']} | {row['none']} | "
            f"{row['mean_tds']:.2f} | {row['seven_suspicious']} | {row['mean_seven']:.2f} | "
            f"{'/'.join(map(str, row['seven_hist']))} |"
        )
    lines += [
        "",
        f"ROC-AUC melanoma vs. nevi: TDS (measured D) **{sc['tds_auc']:.3f}**, 7-point **{sc['seven_auc']:.3f}**. "
        f"TDS: melanoma called suspicious-or-melanoma {sc['tds_sensitivity']:.2f}, nevi called benign "
        f"{sc['tds_specificity']:.2f}. 7-point >= 3: sensitivity {sc['seven_sensitivity']:.2f}, specificity "
        f"{sc['seven_specificity']:.2f}. Mean measured D per diagnosis: {sc['d_mean_by_diagnosis']}.",
        "",
        f"For reference, with the experts' structures instead of ours: 7-point AUC {sc['seven_expert_auc']:.3f}, "
        f"TDS AUC {sc['tds_expert_d_auc']:.3f} (same held-out A, B, C).",
        "",
        f"**No lesion**: {report['crops']['n']} skin-only 128x128 crops cut from PH2 images away from the "
        f"expert mask: {report['crops']['flagged']} flagged `no_lesion`.",
        "",
        f"Time per PH2 image ({report['image_size']}) inside this run: p50 {report['ms_p50']:.1f} ms.",
    ]
    ext = report["external"]
    if ext:
        lines += [
            "",
            f"**Out of sample: melanoma-10k test split** ({ext['benign']['n']} benign + "
            f"{ext['malignant']['n']} malignant images drawn with seed 0; labels only, nothing tuned on "
            f"them). AUC for malignant vs. benign: TDS (measured D) {ext['auc']:.3f}, 7-point "
            f"{ext['seven_auc']:.3f}; 7-point >= 3 in {ext['malignant']['seven_suspicious']} malignant and "
            f"{ext['benign']['seven_suspicious']} benign images. Structures found (images): benign "
            f"{ext['benign']['structures']}, malignant {ext['malignant']['structures']}.",
            "",
            "| label | n | no lesion | benign | suspicious | melanoma | "
            + " | ".join(COLOR_NAMES) + " |",
            "|---|---|---|---|---|---|" + "---|" * len(COLOR_NAMES),
        ]
        for label in ("benign", "malignant"):
            e = ext[label]
            lines.append(
                f"| {label} | {e['n']} | {e['no_lesion']} | "
                + " | ".join(str(e["bands"][b]) for b in BANDS)
                + " | "
                + " | ".join(str(e["colors"][c]) for c in COLOR_NAMES)
                + " |"
            )
        lines += ["", "(colour columns: number of images in which the colour was found)"]
    return "\n".join(lines)


def write_docs(text: str, path: Path) -> None:
    doc = path.read_text() if path.exists() else ""
    block = f"<!-- ph2:begin -->\n{text}\n<!-- ph2:end -->"
    if "<!-- ph2:begin -->" in doc:
        doc = re.sub(r"<!-- ph2:begin -->.*?<!-- ph2:end -->", lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ph2", type=Path, default=Path("/work/shared/data/ph2"))
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "lesion.md")
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave docs alone")
    parser.add_argument("--no-cv", action="store_true", help="skip the (slower) segmentation threshold cross-validation")
    parser.add_argument("--write-model", action="store_true",
                        help="refit the structure models on all images into melascan/lesion/structure_model.json")
    parser.add_argument("--m10k", type=Path, default=Path("/work/shared/data/melanoma-10k/test"))
    parser.add_argument("--m10k-per-class", type=int, default=150, help="0 to skip the out-of-sample check")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a LesionConfig value")
    args = parser.parse_args(argv)
    start = time.time()
    overrides = {}
    for key, value in (item.split("=", 1) for item in args.set):
        kind = type(getattr(DEFAULT_CONFIG, key))
        overrides[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    config = DEFAULT_CONFIG.with_(**overrides)
    cases = load_ph2(args.ph2)
    assign_folds(np.array([c.labels["diagnosis"] for c in cases]))
    results = analyse_all(cases, config)
    names = [c.name for c in cases]

    dice = np.array([r["dice"] for r in results])
    jac = np.array([r["jaccard"] for r in results])
    seg = {
        "dice_mean": float(dice.mean()),
        "dice_median": float(np.median(dice)),
        "jaccard_mean": float(jac.mean()),
        "jaccard_median": float(np.median(jac)),
        "jaccard_below_065": float((jac < 0.65).mean()),
        "no_lesion": int(sum(not r["analysis"].found for r in results)),
        "worst": sorted(zip(dice.round(3), names))[:5],
    }
    seg["cv"] = {"chosen": "-", "cv_mean_dice": float("nan"), "grid_mean_dice": {}} if args.no_cv else cv_threshold_shift(cases, config)

    truth_a = np.array([int(c.labels["asymmetry"]) for c in cases])
    ours_a = np.array([r["dict"]["asymmetry"] if r["dict"]["asymmetry"] is not None else 0 for r in results])
    asym = {
        "kappa_linear": float(cohen_kappa_score(truth_a, ours_a, weights="linear")),
        "kappa_quadratic": float(cohen_kappa_score(truth_a, ours_a, weights="quadratic")),
        "confusion": confusion_matrix(truth_a, ours_a, labels=[0, 1, 2]).tolist(),
        "cv": cv_asymmetry(results, truth_a),
    }

    truth_c = np.array([[int(c.labels[n]) for n in COLOR_NAMES] for c in cases])
    share = color_fraction_table(results, config)
    colors = color_metrics(share, truth_c, config)
    colors["cv"] = cv_colors(results, truth_c, config)

    diagnosis = np.array([c.labels["diagnosis"] for c in cases])
    is_mel = diagnosis == "melanoma"
    b_scores = np.array([r["dict"]["border"] if r["dict"]["border"] is not None else 0 for r in results])
    border = {
        "auc": float(roc_auc_score(is_mel, b_scores)),
        "mean_by_diagnosis": {d: round(float(b_scores[diagnosis == d].mean()), 2) for d in DIAGNOSES},
        "cv": cv_border(results, is_mel),
    }
    struct_cv = cv_structures(results, cases, config, colors["cv"])
    scores_cv = cv_scores(cases, results, asym["cv"], border["cv"], colors["cv"], struct_cv)
    if args.write_model:
        shipped = ship_structure_model(results, cases, config, ROOT / "src" / "melascan" / "lesion" / "structure_model.json")
        print("structure presence thresholds fitted on all images (for LesionConfig):",
              {PRESENCE[n][1]: round(getattr(shipped, PRESENCE[n][1]), 4) for n in TUNED_PRESENCE})

    crops = skin_crops(cases)
    flagged = sum(not analyze_lesion(c, config=config).found for c in crops)
    external = external_check(args.m10k, args.m10k_per_class, config)

    report = {
        "crops": {"n": len(crops), "flagged": flagged},
        "external": external,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} CPU, 2 cores shared with other jobs, no GPU",
        "work_side_px": config.work_side_px,
        "command": " ".join([".venv/bin/python benchmarks/ph2_validation.py", *(f"--set {x}" for x in args.set)]),
        "seg": seg,
        "asym": asym,
        "colors": colors,
        "border": border,
        "structures": struct_cv,
        "scores_cv": scores_cv,
        "ms_p50": float(np.median([r["ms"] for r in results])),
        "image_size": "about 765x572 px",
        "seconds": time.time() - start,
    }
    text = markdown(report)
    print(text)
    print("\nworst Dice:", seg["worst"])
    print("structure thresholds chosen per fold:", struct_cv["chosen"])
    if True:
        print("A thresholds best on all 100 images (shape, colour dE):", asym["cv"]["best_on_all"])
        for i, tuned in enumerate(colors["cv"]["chosen"]):
            keys = [k for g in COLOR_GRIDS.values() for k in g]
            print(f"colour rules tuned on fold {i}:", {k: getattr(tuned, k) for k in keys}, tuned.color_min_fraction)
        tuned = colors["cv"]["tuned_on_all"]
        print("colour rules tuned on all 100:", {k: getattr(tuned, k) for k in keys}, tuned.color_min_fraction)
        print("B AUC by threshold:", border["cv"]["auc_by_threshold"])
    if not args.no_write:
        write_docs(text, args.docs)
        print(f"\nwrote the tables into {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
