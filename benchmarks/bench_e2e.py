"""End-to-end latency of one analysis: MelaScan's stack vs a seed-style PyTorch stack.

    .venv/bin/python benchmarks/bench_e2e.py                    # 200 repetitions (full size)
    .venv/bin/python benchmarks/bench_e2e.py --reps 20          # a quick check
    .venv/bin/python benchmarks/bench_e2e.py --reps 200 --json e2e.json

One analysis of a 300x300 JPEG from ``src/melascan/assets/samples`` (cycling through the
8 committed images), timed stage by stage:

| stage    | MelaScan (shipped)                                   | seed-style                                  |
|----------|------------------------------------------------------|---------------------------------------------|
| decode   | ``melascan.imageio.load_rgb(bytes)``                 | ``PIL.Image.open(...).convert("RGB")`` + array |
| classify | ``Classifier.default()`` (ONNX Runtime): pre-process, forward, calibrated P | torchvision Resize/ToTensor/Normalize, eager timm ``convnext_tiny`` 224 px, softmax |
| segment  | ``analyze_lesion`` minus its ABCD steps (shrink, field of view, hair removal, segmentation, quality) | the same |
| abcd     | ``analyze_lesion``'s A, B, C, D, structures and TDS steps | the same                                |
| heatmap  | CAM from the classify pass's features + ``heatmap_overlay`` | Grad-CAM (its own forward + backward on the last stage) + the same overlay |

``segment`` and ``abcd`` split one real ``analyze_lesion`` call: the ABCD functions it
calls are wrapped with a timer (``abcd_clock``), the rest is ``segment``.
The two stacks run alternately, image by image, so a change in the machine's load hits
both alike. The seed-style model has random weights (speed does not depend on them);
PyTorch gets as many threads as ONNX Runtime (``--threads``, default the Classifier's).
Reported: wall-clock p50/p95 per stage and in total, process CPU time of the total,
the ratio seed / MelaScan, and the machine's load average (other jobs skew timings).
Goals (issue 8): total p50 <= 50 ms, >= 5x faster than the seed-style stack.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import time
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

STAGES = ("decode", "classify", "segment", "abcd", "heatmap")
#: The functions ``melascan.lesion.analysis.analyze_lesion`` calls for A, B, C, D, the dermoscopic structures and TDS.
ABCD_STEPS = ("asymmetry", "diameter", "border", "colors", "structures", "tds")
GOAL_TOTAL_P50_MS = 50.0
GOAL_SPEEDUP = 5.0


def sample_images() -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the committed sample JPEGs."""
    folder = Path(str(resources.files("melascan").joinpath("assets", "samples")))
    return [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.jpg"))]


@contextlib.contextmanager
def function_clock(module, names: tuple[str, ...]) -> Iterator[list[float]]:
    """Time calls of ``module.<name>`` for each name: yields ``[seconds]``, accumulated.

    The functions are replaced by timing wrappers in ``module``'s namespace (where its
    own code looks them up) and restored on exit. Reset with ``clock[0] = 0.0``.
    """
    spent = [0.0]
    originals = {name: getattr(module, name) for name in names}

    def timed(fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return wrapper

    for name, fn in originals.items():
        setattr(module, name, timed(fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


def abcd_clock():
    """``function_clock`` on the ABCD steps that ``analyze_lesion`` calls."""
    import melascan.lesion.analysis as module

    return function_clock(module, ABCD_STEPS)


def lesion_stages(rgb: np.ndarray, clock: list[float]) -> tuple[object, float, float]:
    """``(analysis, segment_s, abcd_s)`` of one real ``analyze_lesion`` call."""
    from melascan.lesion import analyze_lesion

    clock[0] = 0.0
    start = time.perf_counter()
    analysis = analyze_lesion(rgb)
    total = time.perf_counter() - start
    return analysis, total - clock[0], clock[0]


class MelaScanStack:
    """The shipped pipeline: imageio, the ONNX classifier with CAM, melascan.lesion."""

    name = "MelaScan (ONNX Runtime + CAM)"

    def __init__(self, threads: int | None):
        from melascan.inference import Classifier
        from melascan.inference.classifier import default_model_dir

        self.clf = Classifier.default() if threads is None else Classifier(default_model_dir(), threads=threads)
        self.threads = self.clf.threads

    def run(self, data: bytes, clock: list[float]) -> dict[str, float]:
        from melascan.imageio import load_rgb
        from melascan.inference.cam import cam_to_image, class_activation_map
        from melascan.inference.cam import heatmap_overlay

        t: dict[str, float] = {}
        start = time.perf_counter()
        rgb = load_rgb(data)
        t["decode"] = time.perf_counter() - start

        start = time.perf_counter()
        logits, features = self.clf.predict_arrays([rgb], with_features=True)
        prediction = self.clf.prediction_from_logits(logits[0])
        t["classify"] = time.perf_counter() - start

        _, t["segment"], t["abcd"] = lesion_stages(rgb, clock)

        start = time.perf_counter()
        cam = cam_to_image(class_activation_map(features[0], self.clf.weight), *rgb.shape[:2])
        heatmap_overlay(rgb, cam)
        t["heatmap"] = time.perf_counter() - start
        assert 0.0 <= prediction.probability <= 1.0
        return t


class SeedStack:
    """A seed-style pipeline: PIL + torchvision transforms + eager timm model + Grad-CAM."""

    def __init__(self, model_name: str, image_size: int, threads: int):
        import timm
        import torch
        from torchvision import transforms

        torch.set_num_threads(threads)
        self.torch = torch
        self.name = f"seed-style (PyTorch eager {model_name} {image_size} px + Grad-CAM)"
        self.model = timm.create_model(model_name, pretrained=False, num_classes=2).eval()
        self.transform = transforms.Compose([
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ])  # fmt: skip

    def grad_cam(self, x) -> np.ndarray:
        """Grad-CAM (Selvaraju et al. 2017) of the malignant logit on the last feature map."""
        features = self.model.forward_features(x)
        features.retain_grad()
        logits = self.model.forward_head(features)
        self.model.zero_grad(set_to_none=True)
        logits[0, 1].backward()
        weights = features.grad.mean(dim=(2, 3), keepdim=True)
        cam = self.torch.relu((weights * features).sum(dim=1))[0].detach().numpy()
        return cam / cam.max() if cam.max() > 0 else cam

    def run(self, data: bytes, clock: list[float]) -> dict[str, float]:
        import cv2

        from melascan.inference.cam import heatmap_overlay

        torch = self.torch
        t: dict[str, float] = {}
        start = time.perf_counter()
        pil = Image.open(io.BytesIO(data)).convert("RGB")
        rgb = np.asarray(pil)
        t["decode"] = time.perf_counter() - start

        start = time.perf_counter()
        with torch.no_grad():
            x = self.transform(pil).unsqueeze(0)
            probability = float(torch.softmax(self.model(x), dim=1)[0, 1])
        t["classify"] = time.perf_counter() - start

        _, t["segment"], t["abcd"] = lesion_stages(rgb, clock)

        start = time.perf_counter()
        cam = self.grad_cam(self.transform(pil).unsqueeze(0))
        cam = cv2.resize(cam.astype(np.float32), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        heatmap_overlay(rgb, cam)
        t["heatmap"] = time.perf_counter() - start
        assert 0.0 <= probability <= 1.0
        return t


def summarize(rows: list[dict[str, float]], cpu: list[float]) -> dict[str, dict[str, float]]:
    """p50/p95 in ms per stage and for the total; CPU ms of the total."""
    out = {}
    for key in (*STAGES, "total"):
        ms = np.array([r[key] for r in rows]) * 1000.0
        out[key] = {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}
    cpu_ms = np.asarray(cpu) * 1000.0
    out["total"].update(cpu_p50_ms=float(np.percentile(cpu_ms, 50)), cpu_p95_ms=float(np.percentile(cpu_ms, 95)))
    return out


def measure(stacks: list, images: list[tuple[str, bytes]], reps: int, warmup: int) -> list[dict]:
    """Run the stacks alternately on the images; per stack the summary of ``reps`` runs."""
    rows: list[list[dict[str, float]]] = [[] for _ in stacks]
    cpu: list[list[float]] = [[] for _ in stacks]
    with abcd_clock() as clock:
        for i in range(warmup + reps):
            _, data = images[i % len(images)]
            for k, stack in enumerate(stacks):
                cpu_start = time.process_time()
                t = stack.run(data, clock)
                cpu_used = time.process_time() - cpu_start
                if i >= warmup:
                    t["total"] = sum(t[s] for s in STAGES)
                    rows[k].append(t)
                    cpu[k].append(cpu_used)
    return [summarize(r, c) for r, c in zip(rows, cpu)]


@contextlib.contextmanager
def png_level(level: int | None) -> Iterator[None]:
    """What-if: make the web app encode its PNGs at zlib ``level`` (None: unchanged).

    ``encode`` as ``melascan.web.analysis`` calls it is replaced for the duration (and restored); this
    measures a possible change without making it.
    """
    import melascan.web.analysis as web

    if level is None:
        yield
        return
    original = web.encode

    def encode(rgb, fmt="PNG", quality=90):
        if fmt == "JPEG":
            return original(rgb, fmt, quality)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]).astype(np.uint8), "RGB").save(buf, "PNG", compress_level=level)
        return "image/png", buf.getvalue()

    web.encode = encode
    try:
        yield
    finally:
        web.encode = original


def measure_web(images: list[tuple[str, bytes]], reps: int, warmup: int, level: int | None = None) -> dict:
    """The web app's whole analysis, ``melascan.web.analysis.run_analysis`` (the stages
    above plus ``make_overlays`` and the six stored images encoded as JPEG/PNG), and
    the part of it spent in ``encode``: p50/p95 ms, CPU ms of the total, stored bytes.
    ``level``: what-if PNG compression level (see ``png_level``)."""
    import melascan.web.analysis as web

    totals, encodes, cpu, stored = [], [], [], []
    with png_level(level), function_clock(web, ("encode",)) as clock:
        for i in range(warmup + reps):
            name, data = images[i % len(images)]
            clock[0] = 0.0
            cpu_start, start = time.process_time(), time.perf_counter()
            result = web.run_analysis(data, name)
            if i >= warmup:
                totals.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
                encodes.append(clock[0])
                stored.append(sum(len(b) for _, b in result["images"].values()))

    def stats(values: list[float]) -> dict[str, float]:
        ms = np.asarray(values) * 1000.0
        return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}

    return {"run_analysis": stats(totals), "encode_images": stats(encodes), "run_analysis_cpu": stats(cpu),
            "stored_kb_mean": float(np.mean(stored)) / 1000.0, "png_level": level}  # fmt: skip


def print_web(label: str, web: dict) -> None:
    r, e, c = web["run_analysis"], web["encode_images"], web["run_analysis_cpu"]
    print(f"{label}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, CPU p50 {c['p50_ms']:.1f} ms; "
          f"of which encode(): p50 {e['p50_ms']:.1f} ms, p95 {e['p95_ms']:.1f} ms; "
          f"{web['stored_kb_mean']:.0f} kB of images stored")  # fmt: skip


def table(names: list[str], results: list[dict]) -> str:
    """A markdown table: one row per stage, p50 / p95 per stack."""
    head = "| stage | " + " | ".join(f"{n} p50 ms | p95 ms" for n in names) + " |"
    lines = [head, "|---" * (1 + 2 * len(names)) + "|"]
    for key in (*STAGES, "total"):
        cells = " | ".join(f"{r[key]['p50_ms']:.1f} | {r[key]['p95_ms']:.1f}" for r in results)
        lines.append(f"| {key} | {cells} |")
    cpu = " | ".join(f"{r['total']['cpu_p50_ms']:.1f} | {r['total']['cpu_p95_ms']:.1f}" for r in results)
    lines.append(f"| total, process CPU time | {cpu} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=200, help="timed analyses per stack (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed analyses first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime and PyTorch threads (default: the Classifier's, 2)")  # fmt: skip
    parser.add_argument("--seed-model", default="convnext_tiny", help="timm model of the seed-style stack")
    parser.add_argument("--seed-size", type=int, default=224, help="input size of the seed-style stack")
    parser.add_argument("--seed-threads", type=int, default=None,
                        help="PyTorch threads of the seed-style stack (default: same as --threads)")  # fmt: skip
    parser.add_argument("--no-seed", action="store_true", help="only MelaScan's stack (no PyTorch needed)")
    parser.add_argument("--no-web", action="store_true",
                        help="skip timing the web app's run_analysis (overlays + image encoding)")  # fmt: skip
    parser.add_argument("--what-if-png-level", type=int, default=None, metavar="L",
                        help="also time run_analysis with its PNGs at zlib level L (the app is not changed)")  # fmt: skip
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    images = sample_images()
    stacks: list = [MelaScanStack(args.threads)]
    threads = stacks[0].threads
    if not args.no_seed:
        stacks.append(SeedStack(args.seed_model, args.seed_size, args.seed_threads or threads))
    load_start = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, load average {load_start:.2f}; "
          f"threads {threads}; {len(images)} sample images {images[0][0]} ..., {args.reps} reps, "
          f"{args.warmup} warm-up", flush=True)  # fmt: skip

    results = measure(stacks, images, args.reps, args.warmup)
    load_end = os.getloadavg()[0]
    names = [s.name for s in stacks]
    print(table(names, results))
    ours = results[0]["total"]["p50_ms"]
    print(f"\nMelaScan total p50 {ours:.1f} ms (goal <= {GOAL_TOTAL_P50_MS:.0f} ms: "
          f"{'met' if ours <= GOAL_TOTAL_P50_MS else 'NOT met'})")  # fmt: skip
    report: dict = {"reps": args.reps, "warmup": args.warmup, "threads": threads, "images": [n for n, _ in images],
                    "load_average_start": load_start, "load_average_end": load_end,
                    "stacks": dict(zip(names, results))}  # fmt: skip
    if len(results) > 1:
        seed = results[1]
        ratio = seed["total"]["p50_ms"] / ours
        no_heatmap = [sum(r[s]["p50_ms"] for s in STAGES if s != "heatmap") for r in results]
        ratio_no_heatmap = no_heatmap[1] / no_heatmap[0]
        ratio_classify = seed["classify"]["p50_ms"] / results[0]["classify"]["p50_ms"]
        print(f"seed-style / MelaScan, total p50: x{ratio:.2f} (goal >= x{GOAL_SPEEDUP:.0f}: "
              f"{'met' if ratio >= GOAL_SPEEDUP else 'NOT met'})")  # fmt: skip
        print(f"  without the heatmap stage (sum of stage p50s): x{ratio_no_heatmap:.2f}; classify alone: x{ratio_classify:.2f}")
        report.update(speedup_total_p50=ratio, speedup_without_heatmap=ratio_no_heatmap,
                      speedup_classify_p50=ratio_classify)  # fmt: skip
    if not args.no_web:
        report["web_run_analysis"] = web = measure_web(images, args.reps, args.warmup)
        print_web("web app run_analysis (the above + make_overlays + 6 encoded images)", web)
        if args.what_if_png_level is not None:
            report["web_run_analysis_what_if"] = what_if = measure_web(
                images, args.reps, args.warmup, args.what_if_png_level)
            print_web(f"  what if its PNGs used compress_level={args.what_if_png_level} (now 6)", what_if)
        load_end = report["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {load_end:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
