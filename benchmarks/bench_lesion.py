"""Speed of the lesion analysis on 300x300 dermoscopy images (this CPU, no GPU).

Times ``analyze_lesion`` (hair removal + segmentation + features + differential
structures + quality checks),
and the same followed by ``make_overlays``, over ``--runs`` calls cycling through
``--count`` real 300x300 images from melanoma-10k's test split (READS
/work/shared/data/melanoma-10k/test unless ``--images`` says otherwise; falls back to
a synthetic lesion if the folder is missing). Reports p50/p95 of wall-clock time and
of process CPU time: the machine is shared, and CPU time is what the code costs when
other jobs steal the cores. Also prints a per-stage breakdown (CPU time) and writes
the table into docs/lesion.md between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``
(``--no-write`` to only print it).

    .venv/bin/python benchmarks/bench_lesion.py --runs 300
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from melascan.imageio import load_rgb
from melascan.lesion import DEFAULT_CONFIG, analyze_lesion, make_overlays
from melascan.lesion.asymmetry import asymmetry
from melascan.lesion.border import border
from melascan.lesion.colors import colors
from melascan.lesion.diameter import diameter
from melascan.lesion.preprocessing import prepare_work
from melascan.lesion.quality import quality_codes
from melascan.lesion.segmentation import segment, skin_region, to_input_size
from melascan.lesion.structures import structures


def synthetic_lesion(size: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), (225, 180, 160), np.uint8)
    cv2.ellipse(img, (size // 2, size // 2), (size // 4, size // 5), 20, 0, 360, (120, 70, 45), -1)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def load_images(folder: Path, count: int) -> tuple[list[np.ndarray], str]:
    files = sorted(folder.rglob("*.jpg"))[:count] if folder.is_dir() else []
    images = [load_rgb(f) for f in files]
    images = [im for im in images if im.shape[:2] == (300, 300)]
    if not images:
        return [synthetic_lesion(seed=i) for i in range(count)], "synthetic 300x300 lesions"
    return images, f"{len(images)} real 300x300 images from {folder}"


def time_calls(fn, images: list[np.ndarray], runs: int) -> tuple[np.ndarray, np.ndarray]:
    for im in images[:5]:  # warm-up
        fn(im)
    wall, cpu = [], []
    for i in range(runs):
        im = images[i % len(images)]
        t0, c0 = time.perf_counter(), time.process_time()
        fn(im)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return np.asarray(wall), np.asarray(cpu)


def stage_breakdown(images: list[np.ndarray]) -> dict[str, float]:
    """Mean CPU ms per stage, calling the steps of analyze_lesion one by one."""
    cfg, totals, n = DEFAULT_CONFIG, {}, 0

    def tick(name, t0):
        t = time.process_time()
        totals[name] = totals.get(name, 0.0) + (t - t0) * 1000
        return t

    for rgb in images:
        t = time.process_time()
        work = prepare_work(rgb, cfg)
        t = tick("front end (shrink, field of view, hair removal, Lab)", t)
        seg = segment(work, cfg)
        t = tick("segmentation", t)
        quality_codes(work, seg, cfg, lab=work.lab)
        full = to_input_size(seg, work)
        t = tick("quality + mask to input size", t)
        n += 1
        if not seg.found:
            continue
        lab, fov, hair = work.lab, work.fov, work.hair
        a = asymmetry(seg.mask, lab, cfg)
        t = tick("A asymmetry", t)
        d = diameter(full.contour)
        border(seg.mask, lab[:, :, 0], seg.contour, a.axes, d.diameter_px / work.scale, cfg)
        t = tick("B border + D diameter", t)
        skin = skin_region(seg.mask, fov, cfg, hair)
        c, _ = colors(lab, seg.mask & ~hair, skin, cfg)
        t = tick("C colours", t)
        structures(lab, seg.mask, c.skin_lab, fov, hair, None, cfg)
        tick("differential structures", t)
    return {k: v / n for k, v in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("/work/shared/data/melanoma-10k/test"))
    parser.add_argument("--count", type=int, default=40, help="distinct images to cycle through")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--cv2-threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's)")
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "lesion.md")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    args = parser.parse_args(argv)
    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    images, source = load_images(args.images, args.count)
    load_start = os.getloadavg()[0]
    rows = []
    for name, fn in (
        ("analyze_lesion", lambda im: analyze_lesion(im)),
        ("analyze_lesion + make_overlays", lambda im: make_overlays(im, analyze_lesion(im))),
    ):
        wall, cpu = time_calls(fn, images, args.runs)
        rows.append((name, wall, cpu))
    load_end = os.getloadavg()[0]
    stages = stage_breakdown(images)
    command = ".venv/bin/python benchmarks/bench_lesion.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on this machine: {platform.machine()} CPU, {os.cpu_count()} cores "
        f"shared with other jobs (load average {load_start:.1f} at start, {load_end:.1f} at end), no GPU; "
        f"{source}, {args.runs} calls each, cv2 threads {cv2.getNumThreads()}. Command: `{command.strip()}`.",
        "",
        "| what | wall p50 ms | wall p95 ms | CPU p50 ms | CPU p95 ms |",
        "|---|---|---|---|---|",
    ]
    for name, wall, cpu in rows:
        lines.append(
            f"| {name} | {np.percentile(wall, 50):.1f} | {np.percentile(wall, 95):.1f} | "
            f"{np.percentile(cpu, 50):.1f} | {np.percentile(cpu, 95):.1f} |"
        )
    lines += ["", "Mean CPU ms per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) + "."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write and args.docs.exists():
        doc = args.docs.read_text()
        block = f"<!-- bench:begin -->\n{text}\n<!-- bench:end -->"
        if "<!-- bench:begin -->" in doc:
            doc = re.sub(r"<!-- bench:begin -->.*?<!-- bench:end -->", lambda _: block, doc, flags=re.S)
        else:
            doc = doc.rstrip() + "\n\n" + block + "\n"
        args.docs.write_text(doc)
        print(f"\nwrote the table into {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
