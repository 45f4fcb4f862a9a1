"""``melascan export`` (torch is imported inside ``run_export`` only) and ``melascan calibrate`` (torch-free)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="training run folder (runs/NAME)")
    parser.add_argument("--out", required=True, help="output folder, e.g. src/melascan/assets/model")
    parser.add_argument("--checkpoint", default="best", help="checkpoint name (default: best)")
    parser.add_argument("--notes", type=Path, metavar="FILE",
                        help="Markdown to add to the card under 'Notes' (e.g. robustness findings, known limits)")
    parser.add_argument("--name", default="melascan_default", help="file stem of the .onnx (default: %(default)s)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 18)")
    parser.add_argument("--max-mb", type=float, default=25.0,
                        help="refuse an ONNX file larger than this (default: %(default)s; 0 = no limit)")
    parser.add_argument("--fp16-weights", action="store_true",
                        help="store the weights as float16 (half the file, float32 compute; e.g. for an ensemble)")
    parser.add_argument("--int8", action="store_true",
                        help="quantize to int8 (calibrated on training images, compared with fp32 on val)")
    parser.add_argument("--no-scope", action="store_true",
                        help="ship no out-of-scope detector (default: fit one on the run's train/val images)")
    parser.add_argument("--fusion", action="store_true",
                        help="ship the fusion of the network with the lesion measurements (fitted on val); "
                             "without it the export still reports which of the two the validation rule prefers")
    parser.add_argument("--tta", action="store_true",
                        help="ship test-time augmentation: logits averaged over the views, temperature and "
                             "thresholds of the run's `melascan evaluate --tta VIEWS`")
    parser.add_argument("--refit-heads", action="store_true",
                        help="keep the network already exported from RUN in --out and refit only its scope "
                             "detector (and with --fusion the fusion); the card's other entries stay")
    parser.add_argument("--int8-images", type=int, default=128,
                        help="training images used to calibrate int8 ranges (default: %(default)s)")


def run_export(args: argparse.Namespace) -> int:
    from melascan.errors import DataError
    from melascan.export.bundle import DEFAULT_OPSET
    from melascan.export.run import ExportOptions, export_run, refit_heads

    if args.refit_heads:
        ignored = [flag for flag, given in (("--int8", args.int8), ("--fp16-weights", args.fp16_weights),
                                            ("--tta", args.tta), ("--notes", args.notes),
                                            ("--checkpoint", args.checkpoint != "best")) if given]
        if ignored:
            raise DataError(f"--refit-heads keeps the exported network and card; {', '.join(ignored)} "
                            "would change them: export anew instead")
    notes = None
    if args.notes:
        if not args.notes.is_file():
            raise DataError(f"notes file not found: {args.notes}")
        notes = args.notes.read_text(encoding="utf-8").strip()
    options = ExportOptions(checkpoint=args.checkpoint, name=args.name, opset=args.opset or DEFAULT_OPSET,
                            max_size_mb=args.max_mb or None, int8=args.int8, int8_images=args.int8_images,
                            scope=not args.no_scope, fusion=args.fusion, tta=args.tta, notes=notes,
                            fp16_weights=args.fp16_weights)
    result = (refit_heads if args.refit_heads else export_run)(args.run, args.out, options)
    card, heads = result.card, result.heads
    onnx = card["files"]["onnx"]
    print(f"{'refitted the heads of' if args.refit_heads else 'exported'} {args.run} ({card['architecture']}, "
          f"{card['input']['image_size']} px) {'in' if args.refit_heads else 'to'} {args.out}/")
    print(f"  {onnx['name']}: {onnx['bytes'] / 1e6:.1f} MB, sha256 {onnx['sha256'][:16]}...")
    if card["input"]["test_time_views"] > 1:
        print(f"  test-time augmentation: logits averaged over {card['input']['test_time_views']} views")
    print(f"  ONNX vs PyTorch max |logits diff|: {card['export']['max_abs_diff_logits']:.3g}")
    print(f"  full pipeline (pre-processing + ONNX{' int8' if args.int8 else ''}) max |logits diff|: "
          f"{result.pipeline_max_abs_diff:.3g}")
    if args.int8:
        print(f"  int8 vs fp32 on validation: {json.dumps(card['export']['int8']['comparison'])}")
    if heads:
        comparison = heads["fusion_comparison"]
        print(f"  validation ROC-AUC by source, network vs fusion (5-fold CV): "
              f"{json.dumps(comparison['network'])} vs {json.dumps(comparison['fusion_cv'])}")
        if "fusion_loso" in comparison:
            print(f"  fusion fitted on the other sources (leave one source out): {json.dumps(comparison['fusion_loso'])}")
        print(f"  the rule prefers: {comparison['verdict']} ({comparison['verdict_rule']})")
        if args.fusion and comparison["verdict"] == "network":
            print("  WARNING: shipping the fusion although the network alone carries better to a source "
                  "it was not fitted on")
        if "scope" in heads:
            print(f"  scope threshold {heads['scope']['threshold']:.4g} "
                  f"(val pass rate {heads['scope']['val_pass_rate']:.3f}), familiar below "
                  f"{heads['scope']['familiar_below']:.4g}")
            left_out = heads["scope"].get("left_out_source_rejection", {})
            if left_out:
                print(f"  scope, fitted without a source, rejects of its val images: {json.dumps(left_out['rates'])}; "
                      f"rejects or finds unfamiliar: {json.dumps(left_out['unfamiliar_rates'])}")
    cal = card["calibration"]
    print(f"  temperature {cal['temperature']:.4g}, thresholds balanced {cal['thresholds']['balanced']:.4g}, "
          f"screening {cal['thresholds']['screening']:.4g}")
    print(f"  metrics copied for: {', '.join(card['metrics']) or 'none (no eval/*/metrics.json)'}")
    for warning in card["warnings"]:
        print(f"  WARNING: {warning}")
    return 0


def add_calibrate(parser: argparse.ArgumentParser) -> None:
    from melascan.export.site import MIN_PER_CLASS

    parser.add_argument("model", help="model folder to start from (e.g. src/melascan/assets/model)")
    parser.add_argument("--csv", required=True, type=Path,
                        help="the site's labelled images: path,label[,lesion_id] (PH2's labels.csv works as it is)")
    parser.add_argument("--name", required=True, help="the site or set, as the card and the app will name it")
    parser.add_argument("--out", required=True, type=Path, help="new folder for the calibrated copy")
    parser.add_argument("--min-per-class", type=int, default=MIN_PER_CLASS,
                        help="fewest images of each class to fit on (default: %(default)s)")


def run_calibrate(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from melascan.export.site import calibrate_for_site, site_summary

    command = "melascan calibrate " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["calibrate"] else None
    card = calibrate_for_site(args.model, args.csv, args.out, name=args.name, min_per_class=args.min_per_class,
                              command=command)
    print(f"calibrated copy of {args.model} for {args.name}: {args.out}/")
    for line in site_summary(card):
        print(line)
    print(f"serve it with: melascan serve --model {args.out}")
    return 0
