"""Synthetic data for the training tests: small JPEGs + a manifest, written to tmp.

Malignant images are bright, benign ones dark (an easy task a tiny model learns in
a few steps); a coloured blob and noise make every image different.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from melascan.data.manifest import Record, write_manifest
from melascan.training.config import RunConfig


def synthetic_image(rng: np.random.Generator, malignant: bool, size: int = 48) -> np.ndarray:
    base = 190 if malignant else 60
    img = rng.normal(base, 20, size=(size, size, 3))
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.integers(size // 3, 2 * size // 3, 2).tolist() + [rng.integers(size // 8, size // 4)]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] *= rng.uniform(0.5, 0.9, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, counts: dict[str, tuple[int, int]], seed: int = 0, size: int = 48) -> Path:
    """Write images under ``root/images`` and ``root/split/manifest.csv``; ``counts[split] = (benign, malignant)``."""
    rng = np.random.default_rng(seed)
    records = []
    for split, (n_benign, n_malignant) in counts.items():
        for label, n in (("benign", n_benign), ("malignant", n_malignant)):
            for i in range(n):
                rel = f"images/{split}_{label}_{i:03d}.jpg"
                (root / "images").mkdir(parents=True, exist_ok=True)
                Image.fromarray(synthetic_image(rng, label == "malignant", size)).save(root / rel, quality=95)
                md5 = hashlib.md5((root / rel).read_bytes()).hexdigest()
                records.append(Record(rel, label, split, md5, size, size))
    out = root / "split"
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.csv", records)
    (out / "summary.json").write_text(json.dumps({"source_root": str(root)}))
    return out / "manifest.csv"


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """24 train (12/12) and 12 val (6/6) images."""
    return make_dataset(tmp_path_factory.mktemp("data"), {"train": (12, 12), "val": (6, 6), "test": (4, 4)})


@pytest.fixture
def tiny_config(tiny_manifest, tmp_path) -> RunConfig:
    """A seconds-long CPU run: tiny random-init model at 32 px."""
    return RunConfig(
        model="resnet10t", pretrained="none", drop_rate=0.0, manifest=str(tiny_manifest), eda_json=None,
        image_size=32, cache_dir=str(tmp_path / "cache"), recipe="C4", batch_size=8, epochs=1,
        warmup_epochs=0, lr=1e-3, patience=3, checkpoint_every=0, device="cpu", seed=42, threads=1,
    )
