"""Bytes stored, CPU time and peak memory of the web app's analysis (``run_analysis``).

    .venv/bin/python benchmarks/storage_per_analysis.py            # the sample JPEGs, then a 40 MP JPEG
    .venv/bin/python benchmarks/storage_per_analysis.py --no-big   # the samples only

Peak memory is the process's maximum RSS (``getrusage``) after the 40-megapixel
analysis, with the model already loaded: run it in a fresh process for each measurement.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from melascan.web.analysis import run_analysis, split_images
from melascan.web.model import get_classifier


def big_jpeg(width: int = 7744, height: int = 5164) -> bytes:
    """A 40-megapixel JPEG: a brown spot on noisy skin."""
    rng = np.random.default_rng(0)
    small = np.clip(np.array([222, 178, 158]) + rng.normal(0, 12, (height // 8, width // 8, 3)), 0, 255)
    img = Image.fromarray(small.astype(np.uint8)).resize((width, height))
    ImageDraw.Draw(img).ellipse([width * 0.3, height * 0.25, width * 0.7, height * 0.75], fill=(110, 70, 50))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def stored(result: dict) -> dict[str, int]:
    return {kind: len(data) for kind, (_, data) in split_images(result)[1].items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-big", action="store_true", help="skip the 40-megapixel image")
    args = parser.parse_args()
    get_classifier(None)
    samples = sorted(Path(str(resources.files("melascan").joinpath("assets", "samples"))).glob("*.jpg"))
    sizes, cpu = [], []
    for path in samples:
        start = time.process_time()
        result = run_analysis(path.read_bytes(), path.name)
        cpu.append(time.process_time() - start)
        sizes.append(sum(stored(result).values()))
    print(f"{len(samples)} samples: {statistics.mean(sizes) / 1024:.0f} kB stored per analysis (mean), "
          f"run_analysis CPU median {statistics.median(cpu) * 1000:.0f} ms")
    if not args.no_big:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            data = pool.submit(big_jpeg).result()  # made in a child: its pixels never count here
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        parts = stored(run_analysis(data, "big.jpg"))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"40 MP JPEG ({len(data) / 1e6:.1f} MB): {sum(parts.values()) / 1e6:.2f} MB stored "
              f"({', '.join(f'{k} {v // 1024} kB' for k, v in parts.items())}); {seconds:.1f} s; "
              f"peak RSS {peak:.0f} MB (before it: {before:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
