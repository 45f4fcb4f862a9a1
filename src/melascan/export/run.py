"""Export a trained run to a model folder: the whole ``melascan export`` flow (needs torch).

Every step works in a scratch folder (the steps need a loadable bundle to check
themselves): ONNX + CAM head (``bundle.export_bundle``), optional int8
(``quantize.quantize_bundle``), the pipeline check (training's pre-processing + PyTorch
against the ONNX runtime), the scope detector and fusion (``heads.fit_heads``). The
finished card is then written once into the output folder with the files it lists.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melascan.errors import DataError, ImageError
from melascan.export import runinfo
from melascan.export.bundle import DEFAULT_MAX_SIZE_MB, DEFAULT_OPSET, export_bundle
from melascan.imageio import load_rgb
from melascan.inference import card as model_card
from melascan.inference.classifier import Classifier
from melascan.runfolder import RunFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportOptions:
    """One export's settings (the ``melascan export`` flags)."""

    checkpoint: str = "best"
    name: str = "melascan_default"
    opset: int = DEFAULT_OPSET
    max_size_mb: float | None = DEFAULT_MAX_SIZE_MB
    int8: bool = False
    int8_images: int = 128
    scope: bool = True
    fusion: bool = False
    tta: bool = False  # ship the run's test-time augmentation (its views, temperature and thresholds)
    fp16_weights: bool = False  # store the ONNX weights as float16 (half the file; fp32 compute)
    notes: str | None = None


@dataclass
class ExportResult:
    card: dict
    pipeline_max_abs_diff: float
    heads: dict | None  # fit_heads' report (scope threshold, fusion comparison), when fitted


def pipeline_check(model, cfg, clf: Classifier) -> float:
    """Max |logits| difference between training's ``predict_logits`` and the exported
    runtime on a few synthetic images (covers pre-processing, test-time views and ONNX together)."""
    from melascan.training.runs import predict_logits

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((300, 300), (240, 320), (97, 64))]
    ref = np.asarray(predict_logits(model, cfg, images, tta=clf.test_time_views, batch_size=4), dtype=np.float64)
    got = np.stack([p.logits for p in clf.predict_rgbs(images)])
    return float(np.abs(ref - got).max())


def _read_images(paths, labels=None) -> tuple[list, list | None]:
    """Decode image files, skipping (and logging) unreadable ones; labels follow."""
    images, kept = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_rgb(path))
            kept.append(i)
        except ImageError as exc:
            log.warning("skipped: %s", exc)
    return images, (None if labels is None else [labels[i] for i in kept])


def _quantize(manifest, fp32_dir: Path, out_dir: Path, n_calibration: int) -> dict:
    """int8 version of ``fp32_dir`` in ``out_dir``: calibrated on ``n_calibration`` training
    images of the run's manifest, compared with fp32 on the validation split."""
    from melascan.export.quantize import quantize_bundle

    calibration, _ = _read_images([manifest.source_root / r.path for r in manifest.sample("train", n_calibration, 0)])
    val_images, val_labels = _read_images(manifest.files("val"), manifest.label_ids("val"))
    log.info("int8: calibrating on %d training images, comparing on %d validation images",
             len(calibration), len(val_images))
    return quantize_bundle(
        fp32_dir, out_dir, calibration, val_images, val_labels,
        calibration_source=f"{len(calibration)} random images (seed 0) of the train split of {manifest.path}",
        eval_source=f"val split of {manifest.path}",
    )


def _publish(card: dict, work_dir: Path, out_dir: Path) -> None:
    """Copy the files the card lists from ``work_dir`` and write the card, once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for entry in card["files"].values():
        shutil.copyfile(work_dir / entry["name"], out_dir / entry["name"])
    model_card.write_card(card, out_dir)
    Classifier(out_dir)  # the folder must load as the app will load it


def export_run(run_dir: str | Path, out_dir: str | Path, options: ExportOptions = ExportOptions()) -> ExportResult:
    """Export the run's ``options.checkpoint`` into ``out_dir`` (see the module doc)."""
    from melascan.export.heads import fit_heads
    from melascan.training.ensemble import architecture
    from melascan.training.runs import load_run

    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise DataError(f"run folder not found: {run.path}")
    if options.int8 and options.fp16_weights:
        raise DataError("--int8 and --fp16-weights are two ways to shrink the file; choose one")
    model, cfg = load_run(run.path, checkpoint=options.checkpoint)  # cfg.mean/std are always set
    calibration = runinfo.read_calibration(run.path, options.checkpoint, tta=options.tta)
    if calibration is None:
        log.warning("WARNING: %s has no calibration file: exporting with T = 1 and thresholds 0.5 "
                    "(run `melascan evaluate %s` first for calibrated probabilities)", run.path, run.path)
    views = calibration["views"] if options.tta else 1
    warnings = []
    if cfg.tta and not options.tta:
        warnings.append("The run was evaluated with test-time augmentation; this model runs "
                        "without it and uses the plain (non-TTA) calibration.")
    manifest = run.manifest(cfg)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "fp32"
        card = export_bundle(
            model, work, image_size=cfg.image_size, mean=cfg.mean, std=cfg.std,
            color_constancy=cfg.color_constancy, status="trained", name=options.name, architecture=architecture(cfg),
            calibration=calibration, training=runinfo.read_training(run.path, options.checkpoint),
            metrics=runinfo.read_metrics(run.path, options.checkpoint, views), warnings=warnings, notes=options.notes,
            opset=options.opset, max_size_mb=options.max_size_mb, test_time_views=views,
            fp16_weights=options.fp16_weights,
        )
        if options.int8:
            work_int8 = Path(scratch) / "int8"
            card = _quantize(manifest, work, work_int8, options.int8_images)
            work = work_int8
        diff = pipeline_check(model, cfg, Classifier(work))
        heads = None
        if options.scope or options.fusion:
            log.info("fitting the scope detector%s on %s...", " and the fusion" if options.fusion else "",
                     manifest.path)
            heads = fit_heads(work, manifest, scope=options.scope, fusion=options.fusion, progress=True)
            card = model_card.load_card(work)
        card["export"]["pipeline_max_abs_diff_logits"] = diff
        card["export"]["pipeline_check"] = (
            "training's predict_logits vs the ONNX runtime (pre-processing included) on 3 synthetic images"
        )
        _publish(card, work, Path(out_dir))
    return ExportResult(card=card, pipeline_max_abs_diff=diff, heads=heads)


def refit_heads(run_dir: str | Path, out_dir: str | Path, options: ExportOptions = ExportOptions()) -> ExportResult:
    """Refit the scope detector (with ``options.fusion`` the fusion too) of ``out_dir``, a folder
    already exported from ``run_dir``, on the run's manifest: the network, its calibration and the
    card's other entries (external validation included) stay as they are. For a change in how the
    heads are fitted, without a new ONNX file."""
    from melascan.export.heads import fit_heads

    run, out = RunFolder(run_dir), Path(out_dir)
    card = model_card.load_card(out)
    exported_from = Path(str((card.get("training") or {}).get("run", "")))
    if exported_from.resolve() != run.path.resolve():
        raise DataError(f"{out} was exported from {exported_from or 'an unknown run'}, not {run.path}")
    if not (options.scope or options.fusion):
        raise DataError("nothing to refit: no scope detector and no fusion")
    if card.get("fusion") and not options.fusion:
        raise DataError(f"{out} ships a fusion: add --fusion to refit it too (without it the fusion would be dropped)")
    manifest = run.manifest(run.read_config())
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "model"
        shutil.copytree(out, work)
        heads = fit_heads(work, manifest, scope=options.scope, fusion=options.fusion, progress=True)
        card = model_card.load_card(work)
        _publish(card, work, out)
    return ExportResult(card=card, pipeline_max_abs_diff=float(card["export"].get("pipeline_max_abs_diff_logits", 0.0)),
                        heads=heads)
