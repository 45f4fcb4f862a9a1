"""The ``melascan evaluate`` flow: predict, calibrate on validation, score, write files.

``evaluate_run`` is the whole flow for a trained run (it needs torch through
``melascan.training.runs``). Everything after prediction lives in
``evaluate_logits``, which takes logits as arrays, so it can be reused and tested
without a model.

Files written (``runs/NAME`` = the run folder, layout owned by ``melascan.runfolder``)::

    runs/NAME/calibration.json              T + thresholds fitted on val (checkpoint "best";
                                            calibration_<checkpoint>.json for another one)
    runs/NAME/eval/<name>/metrics.json      everything measured, with the settings and command
    runs/NAME/eval/<name>/predictions.csv   path,label,logit0,logit1,probability[,tta_*][,leaked]
    runs/NAME/eval/<name>/leakage.csv       test/folder: images also in the run's train/val split
    runs/NAME/eval/<name>/figures/*.png     ROC, PR, reliability, confusion matrices
    runs/NAME/report.md, report.html        regenerated from every eval/<name>/ present
"""

from __future__ import annotations

import csv
import logging
import shlex
from pathlib import Path

import numpy as np

from melascan.errors import DataError
from melascan.evaluation import calibration as C
from melascan.evaluation import metrics as M
from melascan.evaluation.targets import (
    Target, csv_target, find_seen, folder_target, leakage_summary, split_hashes, split_target, used_paths,
)
from melascan.preprocess import tta_view_count
from melascan.runfolder import RunFolder, safe_name, write_json

log = logging.getLogger(__name__)

# --- scoring ---------------------------------------------------------------------------------


def score(y, logits, cal: dict, *, n_bootstrap: int, seed: int) -> dict:
    """Every metric of ``logits`` under the calibration ``cal`` (T and thresholds)."""
    y = np.asarray(y).astype(int)
    t = cal["temperature"]
    p_cal = C.probability(logits, t)
    thresholds = {"0.5": 0.5, **cal["thresholds"]}
    return {
        "temperature": t,
        "ranking": M.ranking_metrics(y, p_cal, n_bootstrap=n_bootstrap, seed=seed),
        "calibration": C.before_after(y, logits, t),
        "thresholds": {
            name: M.threshold_metrics(y, p_cal, thr, n_bootstrap=n_bootstrap, seed=seed)
            for name, thr in thresholds.items()
        },
    }


def write_figures(out_dir: Path, y, logits, cal: dict, prefix: str = "") -> list[str]:
    """ROC, PR, reliability and one confusion matrix per operating point."""
    from melascan.evaluation import figures as F

    fig_dir = out_dir / "figures"
    t = cal["temperature"]
    p_raw, p_cal = C.probability(logits, 1.0), C.probability(logits, t)
    ops = {"0.5": 0.5, **cal["thresholds"]}
    written = []
    if M.has_both_classes(np.asarray(y)):
        written.append(F.plot_roc(y, p_cal, fig_dir / f"{prefix}roc.png", operating_points=ops))
        written.append(F.plot_pr(y, p_cal, fig_dir / f"{prefix}pr.png", operating_points=ops))
    written.append(F.plot_reliability(y, p_raw, p_cal, fig_dir / f"{prefix}reliability.png", temperature=t))
    for name, thr in ops.items():
        written.append(
            F.plot_confusion_matrix(
                y, p_cal, thr, fig_dir / f"{prefix}confusion_{name}.png", title=f"{name} (t={thr:.3f})"
            )
        )
    return [p.relative_to(out_dir).as_posix() for p in written]


def write_predictions(path: Path, target: Target, logits, cal: dict, tta=None, leaked=None) -> None:
    """``predictions.csv``: one row per image; probability = calibrated P(malignant)."""
    cols = ["path", "label", "logit0", "logit1", "probability"]
    p = C.probability(logits, cal["temperature"])
    if tta is not None:
        tta_logits, tta_cal = tta
        cols += ["tta_logit0", "tta_logit1", "tta_probability"]
        p_tta = C.probability(tta_logits, tta_cal["temperature"])
    if leaked is not None:
        cols.append("leaked")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(cols)
        for i, rel in enumerate(target.paths):
            row = [rel, int(target.labels[i]), f"{logits[i, 0]:.6f}", f"{logits[i, 1]:.6f}", f"{p[i]:.6f}"]
            if tta is not None:
                row += [f"{tta_logits[i, 0]:.6f}", f"{tta_logits[i, 1]:.6f}", f"{p_tta[i]:.6f}"]
            if leaked is not None:
                row.append(int(leaked[i]))
            writer.writerow(row)


def evaluate_logits(
    out_dir: str | Path,
    target: Target,
    logits: np.ndarray,
    val_labels: np.ndarray,
    val_logits: np.ndarray,
    *,
    val_sources: np.ndarray | None = None,
    tta_logits: np.ndarray | None = None,
    tta_val_logits: np.ndarray | None = None,
    leaked: np.ndarray | None = None,
    leak_rows: list[dict] | None = None,
    leakage: dict | None = None,
    info: dict | None = None,
    n_bootstrap: int = M.N_BOOTSTRAP,
    seed: int = M.BOOTSTRAP_SEED,
) -> dict:
    """Fit calibration on validation logits (thresholds counting each of ``val_sources`` the
    same when there are several), score ``target`` at 0.5 and both thresholds
    (and TTA beside plain when TTA logits are given), and write ``metrics.json``,
    ``predictions.csv``, ``leakage.csv`` and the figures into ``out_dir``.

    Returns the metrics dict; ``result["calibration"]`` (and ``["tta_calibration"]``) is
    what belongs in the run's ``calibration.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y = target.labels
    logits = np.asarray(logits, dtype=np.float64)
    variants = {"plain": (logits, np.asarray(val_logits, dtype=np.float64))}
    if tta_logits is not None:
        variants["tta"] = (np.asarray(tta_logits, dtype=np.float64), np.asarray(tta_val_logits, dtype=np.float64))

    result: dict = {
        "name": target.name,
        "source": target.source,
        **(info or {}),
        "n_images": int(len(y)),
        "n_malignant": int(y.sum()),
        "n_benign": int(len(y) - y.sum()),
        "skipped": target.skipped,
        "settings": {
            "n_bootstrap": n_bootstrap,
            "bootstrap": "stratified percentile",
            "confidence": M.CONFIDENCE,
            "seed": seed,
            "ece_bins": M.ECE_BINS,
            "screening_sensitivity": C.SCREENING_SENSITIVITY,
        },
    }
    figures: dict[str, list[str]] = {}
    cals = {}
    for variant, (z, val_z) in variants.items():
        cal = C.fit_calibration(val_z, val_labels, groups=val_sources)
        cals[variant] = cal
        result["calibration" if variant == "plain" else "tta_calibration"] = cal
        result[variant] = score(y, z, cal, n_bootstrap=n_bootstrap, seed=seed)
        figures[variant] = write_figures(out_dir, y, z, cal, prefix="" if variant == "plain" else "tta_")
    result["figures"] = figures
    if target.sources is not None and len(set(target.sources)) > 1:
        names = np.asarray(target.sources)
        result["by_source"] = {
            src: {"n_images": int((names == src).sum()), "n_malignant": int(y[names == src].sum()),
                  **{v: score(y[names == src], z[names == src], cals[v], n_bootstrap=n_bootstrap, seed=seed)
                     for v, (z, _) in variants.items()}}
            for src in sorted(set(target.sources))
        }

    if leakage is not None:
        result["leakage"] = leakage
        if leaked is not None and leaked.any() and (~leaked).any():
            clean = ~leaked
            result["without_leaked"] = {
                "n_images": int(clean.sum()),
                **{
                    v: score(y[clean], z[clean], cals[v], n_bootstrap=n_bootstrap, seed=seed)
                    for v, (z, _) in variants.items()
                },
            }
        if leak_rows is not None:
            from melascan.data.overlap import write_overlap

            write_overlap(out_dir / "leakage.csv", leak_rows)

    write_predictions(
        out_dir / "predictions.csv",
        target,
        logits,
        cals["plain"],
        tta=(variants["tta"][0], cals["tta"]) if "tta" in variants else None,
        leaked=leaked,
    )
    write_json(out_dir / "metrics.json", result)
    return result


# --- the whole flow on a trained run ------------------------------------------------------------


def _default_max_distance() -> int:
    from melascan.data.dedup import DEFAULT_MAX_DISTANCE

    return DEFAULT_MAX_DISTANCE


def command_line(run_dir, *, split, folder, name, tta, checkpoint, limit, n_bootstrap, seed, max_distance,
                 csv_file=None) -> str:
    """The ``melascan evaluate`` command that reproduces an evaluation."""
    parts = ["melascan", "evaluate", str(run_dir)]
    if csv_file:
        parts += ["--csv", str(csv_file)]
    else:
        parts += ["--folder", str(folder)] if folder else ["--split", split]
    if name:
        parts += ["--name", name]
    if tta:
        parts += ["--tta"] + ([] if tta == 8 else [str(tta)])
    if checkpoint != "best":
        parts += ["--checkpoint", checkpoint]
    if limit:
        parts += ["--limit", str(limit)]
    if n_bootstrap != M.N_BOOTSTRAP:
        parts += ["--bootstrap", str(n_bootstrap)]
    if seed != M.BOOTSTRAP_SEED:
        parts += ["--seed", str(seed)]
    if max_distance is not None and max_distance != _default_max_distance():
        parts += ["--max-distance", str(max_distance)]
    return shlex.join(parts)


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    folder: str | Path | None = None,
    name: str | None = None,
    tta: bool | int = False,
    checkpoint: str = "best",
    batch_size: int = 64,
    limit: int | None = None,
    n_bootstrap: int = M.N_BOOTSTRAP,
    seed: int = M.BOOTSTRAP_SEED,
    max_distance: int | None = None,
    device: str = "auto",
    workers: int = 1,
    report: bool = True,
    csv_file: str | Path | None = None,
) -> dict:
    """Evaluate a trained run on a manifest split or a labelled folder (see module doc)."""
    from melascan.data import dedup
    from melascan.training.distributed import torch_device
    from melascan.training.runs import load_run, predict_logits

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run folder not found: {run_dir}")
    run = RunFolder(run_dir)
    max_distance = dedup.DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
    model, cfg = load_run(run_dir, checkpoint=checkpoint)
    model.to(torch_device(device))
    views = tta_view_count(tta or getattr(cfg, "tta", False))  # test-time views; 1 = plain only
    manifest = run.manifest(cfg)
    val = split_target(manifest, "val", limit=limit)
    if not M.has_both_classes(val.labels):
        raise DataError(f"{manifest.path}: the val split needs benign and malignant images to fit thresholds")

    leaked = leak_rows = leakage = None
    if csv_file is not None:
        log.info("%s: decoding and hashing the images...", csv_file)
        target, images = csv_target(csv_file, name, workers=workers)
    elif folder is not None:
        log.info("%s: decoding and hashing the images...", folder)
        target, images = folder_target(folder, name, workers=workers)
    else:
        if split not in ("val", "test", "train"):
            raise DataError(f"unknown split {split!r}; use train, val or test")
        target = split_target(manifest, split, limit=limit)
        target.name = safe_name(name) if name else target.name
        images = split_hashes(manifest, target) if split == "test" else None
        if split == "val":
            log.warning("evaluating on val: calibration and thresholds are fitted on the same images")
    if images is not None:
        leaked, leak_rows = find_seen(target, images, manifest, max_distance, used_paths(manifest, cfg))
        leakage = leakage_summary(target, leaked, leak_rows, max_distance=max_distance)
        log.info("leakage guard: %d of %d images also in the run's train/val split", leaked.sum(), len(leaked))
    target.name = run.eval_name(target.name, checkpoint)

    def predict(t: Target, n_views: int) -> np.ndarray:
        what = f"{t.name}{f' ({n_views} test-time views)' if n_views > 1 else ''}"
        log.info("predicting %d images of %s...", len(t.paths), what)
        return np.asarray(predict_logits(model, cfg, [str(p) for p in t.files()], tta=n_views, batch_size=batch_size))

    val_logits, logits = predict(val, 1), predict(target, 1)
    tta_val_logits = tta_logits = None
    if views > 1:
        tta_val_logits, tta_logits = predict(val, views), predict(target, views)

    command = command_line(
        run_dir, split=split, folder=folder, name=name, tta=views if views > 1 else 0, checkpoint=checkpoint,
        limit=limit, n_bootstrap=n_bootstrap, seed=seed, max_distance=max_distance, csv_file=csv_file,
    )
    info = {
        "run": str(run_dir),
        "checkpoint": checkpoint,
        "model": getattr(cfg, "model", None),
        "image_size": getattr(cfg, "image_size", None),
        "with_tta": views > 1,
        **({"tta_views": views} if views > 1 else {}),
        "calibrated_on": {"split": "val", "n": int(len(val.labels)), "n_malignant": int(val.labels.sum())},
        "command": command,
    }
    result = evaluate_logits(
        run.eval_root / target.name,
        target,
        logits,
        val.labels,
        val_logits,
        val_sources=None if val.sources is None else np.asarray(val.sources),
        tta_logits=tta_logits,
        tta_val_logits=tta_val_logits,
        leaked=leaked,
        leak_rows=leak_rows,
        leakage=leakage,
        info=info,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    cal = {**result["calibration"], "checkpoint": checkpoint, "fitted_on": info["calibrated_on"], "command": command}
    if "tta_calibration" in result:
        cal["tta"] = {**result["tta_calibration"], "views": views}
    if limit:  # a quick look on a subset must not replace the run's calibration
        log.info("--limit: calibration not saved (%s keeps the full-validation fit)", run.calibration_path(checkpoint))
    else:
        run.write_calibration(checkpoint, cal)
    if report:
        from melascan.evaluation.report import write_report

        write_report(run_dir)
    return result
