"""How much of each lesion the network's centre-square crop cuts off, by source and class.

    .venv/bin/python benchmarks/crop_coverage.py --manifest data/mix/manifest.csv --split val \
        --out docs/external_validation/crop_coverage.json

Every model here sees ``preprocess.center_square`` of the image: for a 4:3 picture (HAM10000's
200x150 copies, many dermatoscopes) a quarter of the width is never seen. This segments each image
of the split with the lesion analysis (``melascan.lesion.segment_lesion``, the whole picture) and
reports ``preprocess.lesion_outside_crop_fraction``: per (source, class), the mean share of the
lesion cut off and the share of images losing more than 5 % and 20 % of it. Validation images
only (reads ../shared/data through the manifest); it decides nothing by itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    from melascan.data.manifest import read_manifest
    from melascan.errors import ImageError
    from melascan.imageio import load_rgb
    from melascan.lesion.segmentation import segment_lesion
    from melascan.preprocess import lesion_outside_crop_fraction

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/mix/manifest.csv"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    manifest = read_manifest(args.manifest)
    cells: dict[tuple[str, str], list[float]] = {}
    shapes: dict[str, set] = {}
    for record in manifest.subset(args.split):
        try:
            rgb = load_rgb(manifest.source_root / record.path)
        except ImageError:
            continue
        seg = segment_lesion(rgb)
        if "no_lesion" in seg.flags:
            continue
        key = (record.source or "all", record.label)
        cells.setdefault(key, []).append(lesion_outside_crop_fraction(seg.mask))
        shapes.setdefault(key[0], set()).add(f"{rgb.shape[1]}x{rgb.shape[0]}")
    result = {"manifest": str(args.manifest), "split": args.split, "cells": {}}
    print("| source | class | images (lesion found) | mean share of the lesion cut off | > 5 % cut off | > 20 % cut off |")
    print("|---|---|---|---|---|---|")
    for (source, label), values in sorted(cells.items()):
        v = np.array(values)
        row = {"images": int(v.size), "mean_cut": float(v.mean()), "over_5pct": float(np.mean(v > 0.05)),
               "over_20pct": float(np.mean(v > 0.20)), "image_sizes": sorted(shapes[source])[:5]}
        result["cells"][f"{source}/{label}"] = row
        print(f"| {source} | {label} | {v.size} | {100 * row['mean_cut']:.1f} % | {100 * row['over_5pct']:.1f} % | "
              f"{100 * row['over_20pct']:.1f} % |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
