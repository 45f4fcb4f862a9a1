"""``melascan export`` and ``melascan predict`` (heavy imports stay inside ``run_*``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- export
def add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="training run folder (runs/NAME)")
    parser.add_argument("--out", required=True, help="output folder, e.g. src/melascan/assets/model")
    parser.add_argument("--checkpoint", default="best", help="checkpoint name (default: best)")
    parser.add_argument("--notes", type=Path, metavar="FILE",
                        help="Markdown to add to the card under 'Notes' (e.g. robustness findings, known limits)")
    parser.add_argument("--name", default="melascan_default", help="file stem of the .onnx (default: %(default)s)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 18)")
    parser.add_argument("--max-mb", type=float, default=25.0,
                        help="refuse an ONNX file larger than this (default: %(default)s; 0 = no limit)")  # fmt: skip
    parser.add_argument("--int8", action="store_true",
                        help="quantize to int8 (calibrated on training images, compared with fp32 on val)")  # fmt: skip
    parser.add_argument("--no-scope", action="store_true",
                        help="ship no out-of-scope detector (default: fit one on the run's train/val images)")
    parser.add_argument("--fusion", action="store_true",
                        help="ship the fusion of the network with the lesion measurements (fitted on val)")
    parser.add_argument("--int8-images", type=int, default=128,
                        help="training images used to calibrate int8 ranges (default: %(default)s)")  # fmt: skip


def _pipeline_check(model, cfg, clf) -> float | None:
    """Max |logits| difference between training's ``predict_logits`` and the exported
    runtime on a few synthetic images (covers pre-processing and ONNX together)."""
    import numpy as np

    try:
        from melascan.training.runs import predict_logits
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((300, 300), (240, 320), (97, 64))]
    ref = np.asarray(predict_logits(model, cfg, images, tta=False, batch_size=4), dtype=np.float64)
    got, _ = clf.predict_arrays(images)
    return float(np.abs(ref - got).max())


def _read_images(paths, labels=None) -> tuple[list, list | None]:
    """Decode image files, skipping (and logging) unreadable ones; labels follow."""
    from melascan.errors import ImageError
    from melascan.imageio import load_rgb

    images, kept = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_rgb(path))
            kept.append(i)
        except ImageError as exc:
            log.warning("skipped: %s", exc)
    return images, (None if labels is None else [labels[i] for i in kept])


def _quantize(run_dir: Path, cfg, fp32_dir: Path, out_dir: Path, n_calibration: int) -> dict:
    """int8 version of ``fp32_dir`` in ``out_dir``: calibrated on ``n_calibration`` training
    images of the run's manifest, compared with fp32 on the validation split."""
    import numpy as np

    from melascan.evaluation.evaluate import run_manifest
    from melascan.inference.quantize import quantize_bundle

    manifest = run_manifest(run_dir, cfg)
    train = manifest.files("train")
    picked = np.random.default_rng(0).choice(len(train), size=min(n_calibration, len(train)), replace=False)
    calibration, _ = _read_images([train[i] for i in sorted(picked)])
    val_images, val_labels = _read_images(manifest.files("val"), manifest.label_ids("val"))
    log.info("int8: calibrating on %d training images, comparing on %d validation images",
             len(calibration), len(val_images))  # fmt: skip
    return quantize_bundle(
        fp32_dir, out_dir, calibration, val_images, val_labels,
        calibration_source=f"{len(calibration)} random images (seed 0) of the train split of {manifest.path}",
        eval_source=f"val split of {manifest.path}",
    )  # fmt: skip


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run_export(args: argparse.Namespace) -> int:
    from melascan.errors import DataError
    from melascan.inference import card as model_card
    from melascan.inference import runinfo
    from melascan.inference.classifier import Classifier
    from melascan.inference.export import DEFAULT_OPSET, export_bundle
    from melascan.training.runs import load_run

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise DataError(f"run folder not found: {run_dir}")
    model, cfg = load_run(run_dir, checkpoint=args.checkpoint)  # cfg.mean/std are always set
    calibration = runinfo.read_calibration(run_dir, args.checkpoint)
    if calibration is None:
        log.warning(
            "WARNING: %s has no calibration file: exporting with T = 1 and thresholds 0.5 "
            "(run `melascan evaluate %s` first for calibrated probabilities)", run_dir, run_dir
        )
    notes = None
    if args.notes:
        if not args.notes.is_file():
            raise DataError(f"notes file not found: {args.notes}")
        notes = args.notes.read_text(encoding="utf-8").strip()
    warnings = []
    if getattr(cfg, "tta", False):
        warnings.append("The run was evaluated with test-time augmentation; this model runs "
                        "without it and uses the plain (non-TTA) calibration.")  # fmt: skip
    import tempfile

    tmp = tempfile.TemporaryDirectory() if args.int8 else None
    card = export_bundle(
        model,
        tmp.name if tmp else args.out,
        image_size=cfg.image_size,
        mean=cfg.mean,
        std=cfg.std,
        color_constancy=cfg.color_constancy,
        status="trained",
        name=args.name,
        architecture=getattr(cfg, "model", None),
        calibration=calibration,
        training=runinfo.read_training(run_dir, args.checkpoint),
        metrics=runinfo.read_metrics(run_dir, args.checkpoint),
        warnings=warnings,
        notes=notes,
        opset=args.opset or DEFAULT_OPSET,
        max_size_mb=args.max_mb or None,
    )
    if tmp:
        card = _quantize(run_dir, cfg, Path(tmp.name), Path(args.out), args.int8_images)
        tmp.cleanup()
    clf = Classifier(args.out)  # the bundle must load as the app will load it
    diff = _pipeline_check(model, cfg, clf)
    if diff is not None:
        card["export"]["pipeline_max_abs_diff_logits"] = diff
        card["export"]["pipeline_check"] = (
            "training's predict_logits vs the ONNX runtime (pre-processing included) on 3 synthetic images"
        )
        model_card.write_card(card, args.out)
    if not args.no_scope or args.fusion:
        from melascan.evaluation.evaluate import run_manifest
        from melascan.inference.heads import fit_heads

        log.info("fitting the scope detector%s on %s...", " and the fusion" if args.fusion else "", cfg.manifest)
        heads = fit_heads(args.out, run_manifest(run_dir, cfg), scope=not args.no_scope, fusion=args.fusion,
                          progress=True)
        card = model_card.load_card(args.out)
        print(f"  validation ROC-AUC by source, network vs fusion (5-fold CV): "
              f"{json.dumps(heads['fusion_comparison']['network'])} vs "
              f"{json.dumps(heads['fusion_comparison']['fusion_cv'])}")
        if "scope" in heads:
            print(f"  scope threshold {heads['scope']['threshold']:.4g} "
                  f"(val pass rate {heads['scope']['val_pass_rate']:.3f})")
    onnx = card["files"]["onnx"]
    print(f"exported {run_dir} ({card['architecture']}, {cfg.image_size} px) to {args.out}/")
    print(f"  {onnx['name']}: {onnx['bytes'] / 1e6:.1f} MB, sha256 {onnx['sha256'][:16]}...")
    print(f"  ONNX vs PyTorch max |logits diff|: {card['export']['max_abs_diff_logits']:.3g}")
    if diff is not None:
        print(f"  full pipeline (pre-processing + ONNX{' int8' if args.int8 else ''}) max |logits diff|: {diff:.3g}")
    if args.int8:
        print(f"  int8 vs fp32 on validation: {json.dumps(card['export']['int8']['comparison'])}")
    cal = card["calibration"]
    print(f"  temperature {cal['temperature']:.4g}, thresholds balanced {cal['thresholds']['balanced']:.4g}, "
          f"screening {cal['thresholds']['screening']:.4g}")  # fmt: skip
    print(f"  metrics copied for: {', '.join(card['metrics']) or 'none (no eval/*/metrics.json)'}")
    for warning in card["warnings"]:
        print(f"  WARNING: {warning}")
    return 0


# -------------------------------------------------------------------------- predict
def add_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="an image file, or a folder (searched recursively, sorted)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the results as JSON")
    out.add_argument("--csv", metavar="OUT", help="write one CSV row per image to OUT")
    parser.add_argument("--model", help="model folder, .onnx or model_card.json (default: the embedded model)")
    parser.add_argument("--batch-size", type=_positive_int, default=16, help="images per forward pass (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: 1 or $MELASCAN_ORT_THREADS)")


def _print_table(rows: list[dict]) -> None:
    for row in rows:
        if row["error"]:
            print(f"{row['path']}\tERROR: {row['error']}")
        elif row["in_scope"] is False:
            print(f"{row['path']}\tOUT OF SCOPE: does not look like a dermoscopic image of a skin lesion; not scored")
        else:
            print(f"{row['path']}\tP(melanoma)={row['probability']:.4f}\t"
                  f"balanced: {row['label']}\tscreening: {row['label_screening']}")  # fmt: skip


def run_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from melascan.errors import ImageError
    from melascan.inference.classifier import Classifier, default_model_dir
    from melascan.imageio import resolve_inputs
    from melascan.inference.predict import score_files, write_csv

    paths = resolve_inputs(args.input)
    if args.model or args.threads:
        clf = Classifier(args.model or default_model_dir(), threads=args.threads)
    else:
        clf = Classifier.default()
    if clf.status != "trained":
        print(f"WARNING: {clf.model_dir} is an UNTRAINED placeholder model: its scores mean nothing.",
              file=sys.stderr)  # fmt: skip
    single = len(paths) == 1 and not Path(args.input).is_dir()
    with tqdm(total=len(paths), unit="img", desc="predict", disable=True if single else None) as bar:

        def on_error(exc: ImageError) -> None:
            if single:
                raise exc
            tqdm.write(f"melascan predict: error: {exc}", file=sys.stderr)

        rows = score_files(clf, paths, batch_size=args.batch_size, on_error=on_error, progress=bar.update)
    n_bad = sum(1 for r in rows if r["error"])

    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {len(rows)} rows to {args.csv}", file=sys.stderr)
    elif args.json:
        print(json.dumps({"model": clf.summary(), "predictions": rows}, indent=2))
    else:
        _print_table(rows)
    if n_bad:
        print(f"{n_bad} of {len(rows)} files could not be read (see the error column/messages)", file=sys.stderr)
    return 0 if n_bad < len(rows) else 2
