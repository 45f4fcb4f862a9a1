"""Test-retest: how much do the probability and the lesion measurements move when the same
lesion is photographed again a little differently? (reads ../shared/data)

    .venv/bin/python benchmarks/test_retest.py --n 100 --out src/melascan/web/measurement_noise.json

For ``--n`` seeded-random images of the seed test split, each re-capture change below is
applied and the shipped pipeline (``Classifier.predict_rgbs`` with fusion, ``analyze_lesion``)
is run on the original and the changed image. The **band** of a measurement is the 95th
percentile of its absolute change over all (image, change) pairs: the web app's compare view
calls a change inside the band "no measurable change". Written as JSON (with the medians and
how it was measured) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

#: Small re-capture changes: (name, function of an RGB image).
def _rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def _zoom(rgb: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    big = cv2.resize(rgb, (int(w * factor), int(h * factor)), interpolation=cv2.INTER_LINEAR)
    if factor >= 1:
        top, left = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
        return big[top : top + h, left : left + w]
    pad_y, pad_x = h - big.shape[0], w - big.shape[1]
    return cv2.copyMakeBorder(big, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2, cv2.BORDER_REFLECT)


CHANGES = {
    "rotate +8 deg": lambda x: _rotate(x, 8),
    "rotate -8 deg": lambda x: _rotate(x, -8),
    "zoom 0.9": lambda x: _zoom(x, 0.9),
    "zoom 1.1": lambda x: _zoom(x, 1.1),
    "darker 10 %": lambda x: np.clip(x.astype(np.float32) * 0.9, 0, 255).astype(np.uint8),
    "brighter 10 %": lambda x: np.clip(x.astype(np.float32) * 1.1, 0, 255).astype(np.uint8),
    "slight blur": lambda x: cv2.GaussianBlur(x, (0, 0), 1.0),
}
#: Measurement -> how to read it from (probability, lesion dict).
MEASURES = {
    "probability": lambda p, les: p,
    "asymmetry": lambda p, les: les.get("asymmetry"),
    "border": lambda p, les: les.get("border"),
    "colors": lambda p, les: len(les.get("colors") or []) if les.get("lesion_found") else None,
    "structures": lambda p, les: (les.get("tds_inputs") or {}).get("D"),
    "tds": lambda p, les: les.get("tds"),
    "seven_point": lambda p, les: les.get("seven_point"),
    "diameter_relative": lambda p, les: les.get("diameter_px"),
}


def main() -> None:
    from melascan.data.manifest import read_manifest
    from melascan.imageio import load_rgb
    from melascan.inference import Classifier
    from melascan.lesion import analyze_lesion

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data/seed/manifest.csv")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    clf = Classifier.default()
    files = read_manifest(args.manifest).files("test")
    picked = [files[i] for i in sorted(np.random.default_rng(args.seed).choice(len(files), args.n, replace=False))]
    diffs: dict[str, list[float]] = {m: [] for m in MEASURES}

    def measure(rgb):
        lesion = analyze_lesion(rgb).to_dict()
        p = clf.predict_rgbs([rgb], lesions=[lesion])[0]
        return {m: f(p.probability, lesion) for m, f in MEASURES.items()}

    start = time.time()
    for path in picked:
        rgb = load_rgb(path)
        base = measure(rgb)
        for change in CHANGES.values():
            again = measure(change(rgb))
            for m in MEASURES:
                a, b = base[m], again[m]
                if a is None or b is None:
                    continue
                diffs[m].append(abs(b - a) / a if m == "diameter_relative" and a else abs(b - a))
    result = {
        "what": "absolute change of each measurement between an image and the same image re-captured "
                "slightly differently; band = 95th percentile (diameter: relative change)",
        "changes": list(CHANGES), "images": len(picked), "source": f"{args.manifest} test split, seed {args.seed}",
        "model_onnx_sha256": clf.card["files"]["onnx"]["sha256"], "model_test_time_views": clf.test_time_views,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {platform.python_version()}", "seconds": round(time.time() - start, 1),
        "bands": {m: round(float(np.percentile(v, 95)), 4) for m, v in diffs.items() if v},
        "medians": {m: round(float(np.median(v)), 4) for m, v in diffs.items() if v},
        "pairs": {m: len(v) for m, v in diffs.items()},
        "command": f"python benchmarks/test_retest.py --n {args.n} --seed {args.seed} --out {args.out}",
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
