"""``melascan analyze``: classification plus segmentation, ABCD features, TDS and overlays.

Stable interface (other tools score lesion analysis through it):

* ``--jsonl OUT`` writes one JSON object per image, one per line, in path order;
  a folder is walked recursively. Each object has at least ``path``, ``probability``
  (calibrated P(melanoma), ``null`` with ``--no-classify``), ``in_scope`` (``false``: not a
  dermoscopic image of a skin lesion, do not show its probability; ``null`` without a
  classifier or scope detector), ``familiar`` (``false``: in scope but unlike the images the
  model's numbers were measured on) and ``lesion`` with
  ``asymmetry``, ``border``, ``colors``, ``diameter_px``, ``tds``, ``tds_band`` (see
  ``LesionAnalysis.to_dict`` for all keys). A file that cannot be read gets
  ``{"path": ..., "error": "..."}`` and the others are still processed.
* ``--masks-dir DIR`` writes one binary PNG mask per image, ``DIR/<file stem>.png``,
  255 = lesion, 0 elsewhere, the input's size (all 0 when no lesion was found). When
  two images share a stem, the later ones are named after their relative path
  (``sub__dir__stem.png``); the ``mask`` key of each JSON object names the file.

Exit status: 0 when at least one image was analysed, 2 when none could be.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _structures(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 5:
        raise argparse.ArgumentTypeError("Stolz's D counts 1 to 5 differential structures")
    return value


def add_analyze(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="an image file, or a folder (searched recursively)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON to stdout (one object per line for a folder)")
    out.add_argument("--jsonl", metavar="OUT", help="write one JSON object per image and line to OUT")
    parser.add_argument("--masks-dir", metavar="DIR", help="write DIR/<stem>.png lesion masks (255 = lesion)")
    parser.add_argument("--overlays-dir", metavar="DIR", help="write DIR/<stem>_{contour,axes,colors,structures}.png")
    parser.add_argument("--mm-per-px", type=_positive_float, metavar="X", help="image scale, for diameter_mm")
    parser.add_argument("--structures", type=_structures, metavar="D",
                        help="Stolz's D (1-5) if counted by a person; default: the documented assumption")  # fmt: skip
    parser.add_argument("--no-classify", action="store_true",
                        help="lesion analysis only: skip the melanoma classifier (probability = null)")  # fmt: skip


def resolve_inputs(source: str) -> tuple[list[Path], Path | None]:
    """``(image paths, folder or None)``; raises ``DataError`` when there is nothing to do."""
    from melascan.imageio import resolve_inputs as images_of

    path = Path(source)
    return images_of(path), (path if path.is_dir() else None)


def load_classifier():
    """The embedded melanoma classifier, or a ``ModelError`` saying how to do without it."""
    from melascan.errors import MelascanError, ModelError

    try:
        from melascan.inference import Classifier
    except ImportError as exc:
        raise ModelError(
            f"the melanoma classifier is not available ({exc}); use --no-classify for lesion analysis only"
        ) from None
    try:
        return Classifier.default()
    except MelascanError as exc:
        raise ModelError(f"cannot load the embedded model: {exc}; use --no-classify for lesion analysis only") from None


class OutputNames:
    """File names for masks and overlays: the image's stem, made unique on collision."""

    def __init__(self, root: Path | None):
        self.root = root
        self.used: set[str] = set()

    def stem(self, path: Path) -> str:
        stem = path.stem
        if stem in self.used and self.root is not None:
            stem = "__".join(path.relative_to(self.root).with_suffix("").parts)
        base, n = stem, 2
        while stem in self.used:
            stem, n = f"{base}__{n}", n + 1
        self.used.add(stem)
        return stem


def write_png(path: Path, rgb_or_gray) -> None:
    import cv2

    from melascan.errors import DataError

    image = rgb_or_gray if rgb_or_gray.ndim == 2 else rgb_or_gray[:, :, ::-1]
    if not cv2.imwrite(str(path), image):
        raise DataError(f"could not write {path}")


def analyze_file(path: Path, args: argparse.Namespace, classifier, names: OutputNames) -> dict:
    """The JSON record of one image (raises ``MelascanError`` for a bad image)."""
    import numpy as np

    from melascan.errors import ImageError
    from melascan.imageio import load_rgb
    from melascan.lesion import analyze_lesion, make_overlays

    rgb = load_rgb(path)
    try:
        analysis = analyze_lesion(rgb, args.mm_per_px, structures_count=args.structures)
    except ImageError as exc:  # e.g. too elongated: name the file
        raise ImageError(f"{path}: {exc}") from None
    lesion = analysis.to_dict()
    record: dict = {"path": str(path), "probability": None, "labels": None, "in_scope": None}
    if classifier is not None:
        prediction = classifier.predict_rgbs([rgb], lesions=[lesion])[0]
        record["probability"] = float(prediction.probability)
        record["labels"] = dict(prediction.labels)
        record["in_scope"] = prediction.in_scope
        record["scope_score"] = prediction.scope_score
        record["familiar"] = prediction.familiar
        record["network_probability"] = prediction.network_probability
    record["lesion"] = lesion
    record["quality"] = lesion["quality"]
    stem = names.stem(path) if (args.masks_dir or args.overlays_dir) else None
    if args.masks_dir:
        mask_path = Path(args.masks_dir) / f"{stem}.png"
        write_png(mask_path, analysis.mask.astype(np.uint8) * 255)
        record["mask"] = str(mask_path)
    if args.overlays_dir:
        record["overlays"] = {}
        for kind, image in make_overlays(rgb, analysis).items():
            out = Path(args.overlays_dir) / f"{stem}_{kind}.png"
            write_png(out, image)
            record["overlays"][kind] = str(out)
    return record


def structures_found(structures: dict) -> list[str]:
    """``["atypical pigment_network", "streaks", ...]``: the structures found, for one line."""
    found = []
    for name, value in structures.items():
        if value is True:
            found.append(name)
        elif value not in (False, "absent", None):
            found.append(f"{value} {name}")
    return found


def summary_line(record: dict) -> str:
    """One human-readable line per image for the default output."""
    from melascan.inference.predict import OUT_OF_SCOPE_NOTE, UNFAMILIAR_NOTE

    if "error" in record:
        return f"{record['path']}\tERROR: {record['error']}"
    les = record["lesion"]
    if record.get("in_scope") is False:
        return f"{record['path']}\t{OUT_OF_SCOPE_NOTE}"
    prob = "n/a" if record["probability"] is None else f"{record['probability']:.3f}"
    if record.get("familiar") is False:
        prob += f" ({UNFAMILIAR_NOTE})"
    if not les["lesion_found"]:
        return f"{record['path']}\tP(melanoma)={prob}\tno lesion found\tquality: {', '.join(les['quality'])}"
    diameter = f"{les['diameter_px']:.0f} px" + (f" ({les['diameter_mm']:.1f} mm)" if les["diameter_mm"] else "")
    quality = f"\tquality: {', '.join(les['quality'])}" if les["quality"] else ""
    return (
        f"{record['path']}\tP(melanoma)={prob}\tA={les['asymmetry']} B={les['border']} "
        f"C={len(les['colors'])} ({', '.join(les['colors'])}) diameter={diameter}\t"
        f"TDS={les['tds']:.2f} ({les['tds_band']}, D={les['tds_inputs']['D']} {les['tds_inputs']['D_source']})\t"
        f"7-point={les['seven_point']}{' (suspicious)' if les['seven_point_suspicious'] else ''}\t"
        f"structures: {', '.join(structures_found(les['structures'])) or 'none'}{quality}"
    )


def run_analyze(args: argparse.Namespace) -> int:
    from melascan.errors import MelascanError

    paths, folder = resolve_inputs(args.input)
    classifier = None if args.no_classify else load_classifier()
    for d in (args.masks_dir, args.overlays_dir):
        if d:
            Path(d).mkdir(parents=True, exist_ok=True)
    names = OutputNames(folder)
    single = folder is None
    sink = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None
    n_bad = 0
    try:
        for path in paths:
            try:
                record = analyze_file(path, args, classifier, names)
            except MelascanError as exc:
                if single:
                    raise
                n_bad += 1
                record = {"path": str(path), "error": str(exc)}
                print(f"melascan analyze: error: {exc}", file=sys.stderr)
            if sink is not None:
                sink.write(json.dumps(record) + "\n")
                sink.flush()
            elif args.json:
                print(json.dumps(record, indent=2 if single else None))
            else:
                print(summary_line(record))
    finally:
        if sink is not None:
            sink.close()
    if args.jsonl:
        print(f"wrote {len(paths)} records to {args.jsonl}", file=sys.stderr)
    if n_bad:
        print(f"{n_bad} of {len(paths)} files could not be analysed (see their error lines)", file=sys.stderr)
    return 0 if n_bad < len(paths) else 2
