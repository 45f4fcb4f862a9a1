"""CPU inference speed: the ONNX runtime vs PyTorch eager (same model) vs eager convnext_tiny.

    .venv/bin/python benchmarks/bench_inference.py                 # embedded model, 1 thread
    .venv/bin/python benchmarks/bench_inference.py --model DIR --threads 2 --batch 32
    .venv/bin/python benchmarks/bench_inference.py --sweep         # + threads/spinning/optimisation/int8/size variants

Timings are of the model forward pass on a ready input tensor (ms per image at batch 1:
p50/p95 over ``--iters`` runs after ``--warmup``; images/s at ``--batch``), the classifier's
logits on one ready input (all of the card's test-time views, averaged), plus the
end-to-end ``Classifier.predict`` on a 300x300 RGB array (pre-processing included)
and with CAM. PyTorch models have random weights: speed does not depend on them.
``torch.set_num_threads`` and onnxruntime's ``intra_op_num_threads`` get the same
``--threads``. The machine's load average is printed: other processes skew timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np


def timed(fn: Callable[[], object], iters: int, warmup: int) -> np.ndarray:
    """Wall-clock seconds of ``iters`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(iters)
    for i in range(iters):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out


def latency(fn, iters: int, warmup: int) -> dict:
    t = timed(fn, iters, warmup) * 1000.0
    return {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)), "min_ms": float(t.min())}


def throughput(fn, batch: int, reps: int) -> dict:
    t = timed(fn, reps, 1)
    return {"images_per_s": float(batch / np.median(t)), "batch": batch}


def ort_session(onnx_path: Path, threads: int, *, spinning: bool = False, level: str = "ALL"):
    """A session like ``Classifier``'s (no spinning, ORT_ENABLE_ALL) unless told otherwise."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}") \
        if level != "DISABLE" else ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # fmt: skip
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def bench_ort(session, size: int, args, outputs=("logits",)) -> dict:
    x1 = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    xb = np.random.default_rng(1).standard_normal((args.batch, 3, size, size), dtype=np.float32)
    name = session.get_inputs()[0].name
    return {
        "batch1": latency(lambda: session.run(list(outputs), {name: x1}), args.iters, args.warmup),
        "batched": throughput(lambda: session.run(list(outputs), {name: xb}), args.batch, args.reps),
    }


def bench_torch(model, size: int, args) -> dict:
    import torch

    x1 = torch.randn(1, 3, size, size)
    xb = torch.randn(args.batch, 3, size, size)
    model = model.eval()
    with torch.inference_mode():
        return {
            "batch1": latency(lambda: model(x1), args.iters, args.warmup),
            "batched": throughput(lambda: model(xb), args.batch, args.reps),
        }


def line(name: str, r: dict) -> str:
    b1, bb = r["batch1"], r["batched"]
    return (f"{name:<40} batch 1: p50 {b1['p50_ms']:7.2f} ms  p95 {b1['p95_ms']:7.2f} ms  min {b1['min_ms']:6.2f} ms | "
            f"batch {bb['batch']}: {bb['images_per_s']:7.1f} img/s")  # fmt: skip


def interleaved_latency(fns: dict[str, Callable[[], object]], rounds: int, per_round: int, warmup: int) -> dict:
    """Batch-1 latency of several variants measured in alternating rounds, so that a
    change in the machine's load hits every variant alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].extend(timed(fn, per_round, warmup))
    out = {}
    for name, t in times.items():
        ms = np.asarray(t) * 1000.0
        out[name] = {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                     "min_ms": float(ms.min())}  # fmt: skip
    return out


def sweep(onnx_path: Path, arch: str, size: int, args, clf_precision: str = "fp32") -> dict:
    """Session settings and input sizes (re-exported with random weights), batch 1,
    interleaved; then each variant's batched throughput."""
    from melascan.export.bundle import export_untrained

    variants: dict[str, tuple] = {}  # name -> (session, input size, outputs)
    for threads in sorted({1, 2, args.threads}):
        for spinning in (True, False):
            name = f"threads={threads} spinning={'on' if spinning else 'off'}"
            variants[name] = (ort_session(onnx_path, threads, spinning=spinning), size, ("logits",))
    for level in ("BASIC", "EXTENDED", "DISABLE"):
        variants[f"graph optimisation {level}"] = (ort_session(onnx_path, args.threads, spinning=False, level=level), size, ("logits",))
    variants["outputs logits+features"] = (ort_session(onnx_path, args.threads, spinning=False), size, ("logits", "features"))
    tmp = tempfile.TemporaryDirectory()
    if clf_precision == "fp32":
        from melascan.export.quantize import quantize_onnx

        rng = np.random.default_rng(0)
        batches = [rng.standard_normal((1, 3, size, size), dtype=np.float32) for _ in range(8)]
        int8_path = Path(tmp.name) / "int8.onnx"
        quantize_onnx(onnx_path, int8_path, batches, "input")  # speed only: random calibration
        variants["int8 (speed only)"] = (ort_session(int8_path, args.threads), size, ("logits",))
    for other in args.sizes:
        if other != size:
            card = export_untrained(Path(tmp.name) / str(other), arch, other, name="m")
            path = Path(tmp.name) / str(other) / card["files"]["onnx"]["name"]
            variants[f"input {other} px"] = (ort_session(path, args.threads, spinning=False), other, ("logits",))

    def call(session, size_px: int, n: int, outputs):
        x = np.random.default_rng(0).standard_normal((n, 3, size_px, size_px), dtype=np.float32)
        name = session.get_inputs()[0].name
        return lambda: session.run(list(outputs), {name: x})

    results = interleaved_latency(
        {name: call(sess, px, 1, outs) for name, (sess, px, outs) in variants.items()},
        args.rounds, max(1, args.iters // args.rounds), 2,
    )  # fmt: skip
    for name, (sess, px, outs) in variants.items():
        r = {"batch1": results[name], "batched": throughput(call(sess, px, args.batch, outs), args.batch, args.reps)}
        results[name] = r
        print(line(f"ONNX {name}", r), flush=True)
    tmp.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder / .onnx / model_card.json (default: embedded model)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (Classifier's default: 1)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=100, help="timed batch-1 runs")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5, help="timed batched runs")
    parser.add_argument("--rounds", type=int, default=10, help="--sweep: alternating rounds of --iters/rounds runs")
    parser.add_argument("--baseline", default="convnext_tiny", help="eager timm baseline ('' to skip)")
    parser.add_argument("--no-torch", action="store_true", help="only the ONNX runtime")
    parser.add_argument("--sweep", action="store_true", help="also try session settings and input sizes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 192, 224], help="input sizes for --sweep")
    parser.add_argument("--json", help="write all results to this JSON file")
    args = parser.parse_args()

    from melascan.inference import Classifier

    clf = Classifier(args.model, threads=args.threads) if args.model else Classifier.default()
    arch, size = clf.card["architecture"], clf.image_size
    print(f"model: {clf.onnx_path} ({arch}, {size} px, {clf.card.get('precision', 'fp32')}, status {clf.status})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; threads {args.threads}")  # fmt: skip
    results: dict = {"model": str(clf.onnx_path), "architecture": arch, "image_size": size,
                     "threads": args.threads, "load_average_start": os.getloadavg()[0]}  # fmt: skip

    results["onnx"] = bench_ort(clf.session, size, args)
    print(line(f"ONNX runtime (Classifier, {clf.threads} threads)", results["onnx"]), flush=True)
    x1 = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    results["test_time_views"] = clf.test_time_views
    results["classify"] = latency(lambda: clf.outputs(x1, ["logits"]), args.iters, args.warmup)
    print(f"{f'Classifier logits ({clf.test_time_views} test-time views)':<44} p50 "
          f"{results['classify']['p50_ms']:7.2f} ms  p95 {results['classify']['p95_ms']:7.2f} ms", flush=True)
    rgb = np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    results["predict_end_to_end"] = latency(lambda: clf.predict(rgb), args.iters, args.warmup)
    results["predict_with_cam"] = latency(lambda: clf.predict(rgb, with_cam=True), args.iters, args.warmup)
    print(f"{'Classifier.predict(300x300 array)':<44} p50 {results['predict_end_to_end']['p50_ms']:7.2f} ms  "
          f"with CAM p50 {results['predict_with_cam']['p50_ms']:7.2f} ms", flush=True)  # fmt: skip

    if not args.no_torch:
        import timm
        import torch

        torch.set_num_threads(args.threads)
        results["torch_same"] = bench_torch(timm.create_model(arch, pretrained=False, num_classes=2), size, args)
        print(line(f"PyTorch eager {arch}", results["torch_same"]), flush=True)
        if args.baseline:
            base = timm.create_model(args.baseline, pretrained=False, num_classes=2)
            results["torch_baseline"] = bench_torch(base, 224, args)
            print(line(f"PyTorch eager {args.baseline} 224 px", results["torch_baseline"]), flush=True)
        o = results["onnx"]
        for key, name in (("torch_same", f"eager {arch}"), ("torch_baseline", f"eager {args.baseline}")):
            if key in results:
                r = results[key]
                print(f"speed-up of ONNX over {name}: batch 1 p50 x{r['batch1']['p50_ms'] / o['batch1']['p50_ms']:.2f}, "
                      f"batched x{o['batched']['images_per_s'] / r['batched']['images_per_s']:.2f}")  # fmt: skip

    if args.sweep:
        results["sweep"] = sweep(clf.onnx_path, arch, size, args, clf.card.get("precision", "fp32"))
    results["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {results['load_average_end']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
