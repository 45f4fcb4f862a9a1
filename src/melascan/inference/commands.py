"""``melascan predict`` (heavy imports stay inside ``run_*``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    from melascan.inference.predict import OUT_OF_SCOPE_NOTE, UNFAMILIAR_NOTE

    for row in rows:
        if row["error"]:
            print(f"{row['path']}\tERROR: {row['error']}")
        elif row["in_scope"] is False:
            print(f"{row['path']}\t{OUT_OF_SCOPE_NOTE}")
        else:
            print(f"{row['path']}\tP(melanoma)={row['probability']:.4f}\t"
                  f"balanced: {row['label']}\tscreening: {row['label_screening']}"
                  + (f"\t{UNFAMILIAR_NOTE}" if row["familiar"] is False else ""))  # fmt: skip


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
