"""The ``melascan evaluate`` flow: predict, calibrate on validation, score, write files.

``evaluate_run`` is the whole flow for a trained run (it needs torch through
``melascan.training.runs``). Everything after prediction lives in
``evaluate_logits``, which takes logits as arrays, so it can be reused and tested
without a model.

Files written (``runs/NAME`` = the run folder)::

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
import json
import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from melascan.data.manifest import LABELS, Manifest, read_manifest
from melascan.errors import DataError
from melascan.serialization import json_safe
from melascan.evaluation import calibration as C
from melascan.evaluation import metrics as M

log = logging.getLogger(__name__)

#: Named operating points; "0.5" is the uncalibrated-style default threshold.
OPERATING_POINTS = ("0.5", "balanced", "screening")


# --- what is evaluated --------------------------------------------------------------------


@dataclass
class Target:
    """A labelled image set to score: ``root / paths[i]`` has class id ``labels[i]``."""

    name: str
    source: dict  # {"kind": "split", "split": ..., "manifest": ...} or {"kind": "folder", ...}
    root: Path
    paths: list[str]
    labels: np.ndarray
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    sources: list[str] | None = None  # per image, for a multi-source manifest split

    def files(self) -> list[Path]:
        return [self.root / p for p in self.paths]


def limit_indices(labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of a seeded random subset of at most ``limit`` items, in original order."""
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def split_target(manifest: Manifest, split: str, *, limit: int | None = None) -> Target:
    """The images of one manifest split (optionally a seeded subset of ``limit``)."""
    records = manifest.subset(split)
    if not records:
        raise DataError(f"{manifest.path}: the {split!r} split is empty")
    labels = np.array([r.label_id for r in records], dtype=int)
    idx = limit_indices(labels, limit)
    return Target(
        name=split,
        source={"kind": "split", "split": split, "manifest": str(manifest.path), "limit": limit},
        root=manifest.source_root,
        paths=[records[i].path for i in idx],
        labels=labels[idx],
        sources=[records[i].source for i in idx] if manifest.sources() else None,
    )


def folder_target(folder: str | Path, name: str | None = None, *, workers: int = 1) -> tuple[Target, dict]:
    """Every readable image under ``folder`` inside a folder named ``benign`` or
    ``malignant`` (any depth, the layout ``melascan prepare`` reads), decoded and hashed
    once by ``melascan.data.scan.scan_images``. Returns the target and
    ``{path: ImageInfo}`` (md5 + phash) for the leakage guard; unreadable files go to
    ``target.skipped``."""
    from melascan.data.scan import scan_images

    folder = Path(folder)
    scan = scan_images(folder, workers=workers, progress=False)
    if not scan.images:
        raise DataError(f"{folder}: no readable image in the benign/malignant folders")
    if scan.ignored:
        log.warning("%s: %d file(s) outside benign/malignant folders ignored", folder, len(scan.ignored))
    for s in scan.skipped:
        log.warning("skipped %s: %s", folder / s.path, s.reason)
    target = Target(
        name=safe_name(name or folder.resolve().name),
        source={"kind": "folder", "folder": str(folder.resolve()), "ignored_outside_class_folders": len(scan.ignored)},
        root=folder,
        paths=[i.path for i in scan.images],
        labels=np.array([LABELS.index(i.label) for i in scan.images], dtype=int),
        skipped=[{"path": s.path, "reason": s.reason} for s in scan.skipped],
    )
    return target, {i.path: i for i in scan.images}


def csv_target(csv_file: str | Path, name: str | None = None, *, images_dir: str | Path | None = None,
               workers: int = 1) -> tuple[Target, dict]:
    """The images of a labelled CSV (``melascan.data.labelled``: ``path,label``, PH2's
    ``labels.csv``, HAM10000's metadata), decoded and hashed once for the leakage guard.
    Paths in the target are absolute (``root`` is ``/``)."""
    from concurrent.futures import ProcessPoolExecutor

    from melascan.data.labelled import read_labelled_csv
    from melascan.data.scan import ImageInfo, _inspect_job

    csv_file = Path(csv_file)
    listed, skipped = read_labelled_csv(csv_file, images_dir)
    jobs = [("/", str(item.path.resolve()).lstrip("/"), item.label) for item in listed]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(_inspect_job, jobs, chunksize=32))
    infos = [r for r in results if isinstance(r, ImageInfo)]
    skipped += [{"path": r.path, "reason": r.reason} for r in results if not isinstance(r, ImageInfo)]
    for s in skipped:
        log.warning("skipped %s: %s", s["path"], s["reason"])
    if not infos:
        raise DataError(f"{csv_file}: no readable image")
    target = Target(
        name=safe_name(name or csv_file.stem),
        source={"kind": "csv", "csv": str(csv_file.resolve()), "images_dir": str(images_dir) if images_dir else None},
        root=Path("/"),
        paths=[i.path for i in infos],
        labels=np.array([LABELS.index(i.label) for i in infos], dtype=int),
        skipped=skipped,
    )
    return target, {i.path: i for i in infos}


def safe_name(text: str) -> str:
    """A folder-safe evaluation name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "folder"


# --- leakage guard -------------------------------------------------------------------------

#: Splits of the run's manifest whose images the run has "seen": train (weights) and val
#: (early stopping, temperature and thresholds).
SEEN_SPLITS = ("train", "val")


def split_hashes(manifest: Manifest, target: Target) -> dict:
    """``{path: ImageInfo}`` of a manifest split's images, from the ``hashes.csv`` that
    ``melascan prepare`` writes beside the manifest (computed where missing)."""
    from melascan.data.overlap import read_hashes
    from melascan.data.scan import ImageInfo, inspect_image

    known = read_hashes(manifest.path.with_name("hashes.csv"))
    md5_of = {r.path: r.md5 for r in manifest.records}
    out = {}
    for path, label in zip(target.paths, target.labels):
        info = known.get(path)
        if info is None or info.md5 != md5_of[path]:
            md5, width, height, hash_hex = inspect_image(target.root / path)
            info = ImageInfo(path, LABELS[label], md5, width, height, hash_hex)
        out[path] = info
    return out


def find_seen(
    target: Target, images: dict, manifest: Manifest, max_distance: int, run_paths: set[str] | None = None
) -> tuple[np.ndarray, list[dict]]:
    """Which target images the run has seen: same bytes (MD5) or a perceptual hash within
    ``max_distance`` bits of an image in the run's train or val split
    (``melascan.data.overlap.find_overlap``). ``run_paths``: the manifest paths the run
    really used (a run trained with ``limit`` saw only part of its splits); None = all.
    Returns ``(mask, overlap rows)``."""
    from melascan.data.manifest import Record
    from melascan.data.overlap import find_overlap

    records = [
        Record(p, LABELS[y], "test", images[p].md5, images[p].width, images[p].height)
        for p, y in zip(target.paths, target.labels)
    ]
    rows = [
        r
        for r in find_overlap(records, images, target.root, manifest.path, max_distance)
        if r["ref_split"] in SEEN_SPLITS and (run_paths is None or r["ref_path"] in run_paths)
    ]
    seen = {r["path"] for r in rows}
    return np.array([p in seen for p in target.paths], dtype=bool), rows


def leakage_summary(target: Target, leaked: np.ndarray, rows: list[dict], *, max_distance: int | None) -> dict:
    """Counts for metrics.json: images of the target also in the run's train / val split."""

    def paths(split=None, kinds=None):
        return {
            r["path"]
            for r in rows
            if (split is None or r["ref_split"] == split) and (kinds is None or r["kind"] in kinds)
        }

    return {
        "checked": int(len(target.paths)),
        "against": "train and val images the run used (from its manifest)",
        "method": f"exact MD5 + perceptual hash within {max_distance} bits",
        "max_distance": max_distance,
        "n_in_train": len(paths("train")),
        "n_in_val": len(paths("val")),
        "n_exact": len(paths(kinds=("exact", "same_file"))),
        "n_near": len(paths(kinds=("near",)) - paths(kinds=("exact", "same_file"))),
        "n_leaked": int(leaked.sum()),
        "n_leaked_malignant": int(target.labels[leaked].sum()),
    }


# --- scoring ---------------------------------------------------------------------------------


def score(y, logits, cal: dict, *, n_bootstrap: int, seed: int) -> dict:
    """Every metric of ``logits`` under the calibration ``cal`` (T and thresholds)."""
    y = np.asarray(y).astype(int)
    t = cal["temperature"]
    p_raw, p_cal = C.probability(logits, 1.0), C.probability(logits, t)
    thresholds = {"0.5": 0.5, **cal["thresholds"]}
    return {
        "temperature": t,
        "ranking": M.ranking_metrics(y, p_cal, n_bootstrap=n_bootstrap, seed=seed),
        "calibration": {
            "nll_before": C.nll(logits, y, 1.0),
            "nll_after": C.nll(logits, y, t),
            "ece_before": M.expected_calibration_error(y, p_raw),
            "ece_after": M.expected_calibration_error(y, p_cal),
            "brier_before": M.brier(y, p_raw),
            "brier_after": M.brier(y, p_cal),
        },
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
    tta_logits: np.ndarray | None = None,
    tta_val_logits: np.ndarray | None = None,
    leaked: np.ndarray | None = None,
    leak_rows: list[dict] | None = None,
    leakage: dict | None = None,
    info: dict | None = None,
    n_bootstrap: int = M.N_BOOTSTRAP,
    seed: int = M.BOOTSTRAP_SEED,
) -> dict:
    """Fit calibration on validation logits, score ``target`` at 0.5 and both thresholds
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
        cal = C.fit_calibration(val_z, val_labels)
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
    (out_dir / "metrics.json").write_text(json.dumps(json_safe(result), indent=2) + "\n")
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
        parts.append("--tta")
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


def run_manifest(run_dir: Path, cfg) -> Manifest:
    """The run's manifest: ``data.json["manifest"]`` (absolute, written by training), else
    ``cfg.manifest`` relative to the working directory or the run folder. Warns when
    its sha256 differs from the one recorded at training time."""
    data = json.loads((run_dir / "data.json").read_text()) if (run_dir / "data.json").is_file() else {}
    candidates = [Path(data["manifest"])] if data.get("manifest") else []
    candidates += [Path(cfg.manifest), run_dir / cfg.manifest]
    for candidate in candidates:
        if candidate.is_file():
            manifest = read_manifest(candidate)
            if data.get("manifest_sha256") and data["manifest_sha256"] != manifest.sha256():
                log.warning("%s changed since the run was trained: splits and leakage checks may not match", candidate)
            return manifest
    raise DataError(f"{run_dir}: the run's manifest was not found (tried {', '.join(map(str, candidates))})")


def used_paths(manifest: Manifest, cfg) -> set[str] | None:
    """Manifest paths of the train/val images a run trained with ``cfg.limit`` really used
    (the training code's own seeded selection); None when it used whole splits."""
    if getattr(cfg, "limit", None) is None:
        return None
    from melascan.training.data import select_records

    return {r.path for split in SEEN_SPLITS for r in select_records(manifest, split, cfg.limit, cfg.seed)}


def torch_device(choice: str = "auto"):
    """``auto`` -> CUDA when available, else CPU."""
    import torch

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda: no CUDA device available")
    return torch.device(choice)


def calibration_path(run_dir: Path, checkpoint: str) -> Path:
    return run_dir / ("calibration.json" if checkpoint == "best" else f"calibration_{safe_name(checkpoint)}.json")


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    folder: str | Path | None = None,
    name: str | None = None,
    tta: bool = False,
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
    from melascan.training.runs import load_run, predict_logits

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run folder not found: {run_dir}")
    max_distance = dedup.DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
    model, cfg = load_run(run_dir, checkpoint=checkpoint)
    model.to(torch_device(device))
    tta = bool(tta or getattr(cfg, "tta", False))
    manifest = run_manifest(run_dir, cfg)
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
    if checkpoint != "best":
        target.name = f"{target.name}@{safe_name(checkpoint)}"

    def predict(t: Target, use_tta: bool) -> np.ndarray:
        what = f"{t.name}{' (TTA)' if use_tta else ''}"
        log.info("predicting %d images of %s...", len(t.paths), what)
        return np.asarray(predict_logits(model, cfg, [str(p) for p in t.files()], tta=use_tta, batch_size=batch_size))

    val_logits, logits = predict(val, False), predict(target, False)
    tta_val_logits = tta_logits = None
    if tta:
        tta_val_logits, tta_logits = predict(val, True), predict(target, True)

    command = command_line(
        run_dir, split=split, folder=folder, name=name, tta=tta, checkpoint=checkpoint,
        limit=limit, n_bootstrap=n_bootstrap, seed=seed, max_distance=max_distance, csv_file=csv_file,
    )
    info = {
        "run": str(run_dir),
        "checkpoint": checkpoint,
        "model": getattr(cfg, "model", None),
        "image_size": getattr(cfg, "image_size", None),
        "with_tta": tta,
        "calibrated_on": {"split": "val", "n": int(len(val.labels)), "n_malignant": int(val.labels.sum())},
        "command": command,
    }
    result = evaluate_logits(
        run_dir / "eval" / target.name,
        target,
        logits,
        val.labels,
        val_logits,
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
        cal["tta"] = result["tta_calibration"]
    if limit:  # a quick look on a subset must not replace the run's calibration
        log.info("--limit: calibration not saved (%s keeps the full-validation fit)", calibration_path(run_dir, checkpoint))
    else:
        C.save_calibration(calibration_path(run_dir, checkpoint), json_safe(cal))
    if report:
        from melascan.evaluation.report import write_report

        write_report(run_dir)
    return result
