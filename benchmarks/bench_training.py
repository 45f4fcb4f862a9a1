"""Training throughput on this machine (images/s), model-only vs the full training loop.

    .venv/bin/python benchmarks/bench_training.py                 # ~1-2 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_training.py --models efficientnet_lite0 --sizes 192 224 --steps 5

For each model and size it prints:

- ``decode``: JPEG decode + ``prepare_pixels`` per image (what the cache saves every epoch);
- ``data``: the cached DataLoader with augmentation (recipe C4), no model;
- ``model``: forward + backward + AdamW step on a ready tensor batch (channels-last);
- ``loop``: ``engine.train_one_epoch`` over cached synthetic images: augmentation,
  normalisation, model step, metrics - what ``melascan train`` runs.

Numbers are images/s after one warm-up batch; random weights (speed does not depend
on them). Keep other jobs in mind: on a shared machine the numbers move.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import time

import numpy as np
import torch
from PIL import Image

from melascan.imageio import load_rgb
from melascan.preprocess import prepare_pixels
from melascan.training.config import RunConfig
from melascan.training.data import CachedImageDataset, make_train_sampler
from melascan.training.distributed import Dist
from melascan.training.engine import train_one_epoch, warmup_cosine
from melascan.training.losses import build_loss
from melascan.training.models import build_model
from melascan.training.recipes import build_recipe


def bench_decode(size: int, n: int = 64) -> float:
    """images/s of load_rgb + prepare_pixels on 300x300 JPEGs (the dataset's format)."""
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(8):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        blobs.append(buf.getvalue())
    t0 = time.perf_counter()
    for i in range(n):
        prepare_pixels(load_rgb(blobs[i % 8]), size)
    return n / (time.perf_counter() - t0)


def _loader(cfg: RunConfig, n_images: int):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n_images, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    labels = np.arange(n_images) % 2
    dataset = CachedImageDataset(pixels, labels, build_recipe(cfg.recipe))
    sampler = make_train_sampler(dataset, labels, weighted=False, seed=0)
    return torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                                       num_workers=cfg.num_workers, drop_last=True)


def bench_data(cfg: RunConfig, steps: int) -> float:
    """images/s of the cached, augmenting DataLoader alone."""
    loader = _loader(cfg, cfg.batch_size * (steps + 1))
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    n = sum(len(batch[1]) for batch in it)
    return n / (time.perf_counter() - t0)


def bench_model(cfg: RunConfig, steps: int) -> float:
    """images/s of forward + backward + optimizer step on a ready batch."""
    model = build_model(cfg).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = build_loss(cfg)
    x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size).contiguous(memory_format=torch.channels_last)
    y = torch.arange(cfg.batch_size) % 2
    for step in range(steps + 1):
        if step == 1:
            t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()
        optimizer.step()
    return cfg.batch_size * steps / (time.perf_counter() - t0)


def bench_loop(cfg: RunConfig, steps: int) -> float:
    """images/s of engine.train_one_epoch (one warm-up epoch of 1 batch, then ``steps`` batches)."""
    model = build_model(cfg).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(0, 100))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    where = Dist(0, 1, torch.device("cpu"))
    args = (build_loss(cfg), optimizer, scheduler, scaler, cfg, where)
    train_one_epoch(model, _loader(cfg, cfg.batch_size), *args, desc="warm-up", progress=False)
    loader = _loader(cfg, cfg.batch_size * steps)
    t0 = time.perf_counter()
    out = train_one_epoch(model, loader, *args, desc="loop", progress=False)
    return out["images"] / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "convnext_atto"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[160, 224])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="timed batches per measurement (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.steps} timed batches, recipe C4, float32 CPU")
    print(f"{'model':<20}{'size':>5}{'decode':>10}{'data':>10}{'model':>10}{'loop':>10}   (images/s)")
    results = []
    for name in args.models:
        for size in args.sizes:
            cfg = RunConfig(model=name, pretrained="none", image_size=size, batch_size=args.batch_size,
                            recipe="C4", num_workers=args.num_workers, mean=[0.5] * 3, std=[0.25] * 3)
            cfg = dataclasses.replace(cfg).validate()
            row = {"model": name, "size": size, "decode": bench_decode(size), "data": bench_data(cfg, args.steps),
                   "model_only": bench_model(cfg, args.steps), "loop": bench_loop(cfg, args.steps)}
            results.append(row)
            print(f"{name:<20}{size:>5}{row['decode']:>10.1f}{row['data']:>10.1f}{row['model_only']:>10.1f}"
                  f"{row['loop']:>10.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": torch.get_num_threads(), "batch_size": args.batch_size, "results": results}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
