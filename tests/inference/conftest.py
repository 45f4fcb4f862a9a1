"""A real tiny run for the inference tests: train -> evaluate -> `melascan export`.

Synthetic JPEGs (bright = malignant, dark = benign), timm's ``test_efficientnet``
at 64 px with Shades-of-Gray colour constancy, one epoch on CPU; then the
evaluation helper fits calibration.json and writes eval/test/metrics.json, and the
real ``melascan export`` command writes the model folder every test uses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from melascan.data.manifest import Record, write_manifest

IMAGE_SIZE = 64
CALIBRATED = {"temperature", "thresholds"}


def synthetic_rgb(rng: np.random.Generator, malignant: bool, h: int = 72, w: int = 72) -> np.ndarray:
    img = rng.normal(190 if malignant else 60, 25, size=(h, w, 3))
    yy, xx = np.mgrid[:h, :w]
    cy, cx, r = h // 2, w // 2, min(h, w) // 4
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] *= rng.uniform(0.4, 0.9, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, counts: dict[str, tuple[int, int]], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    (root / "images").mkdir(parents=True, exist_ok=True)
    for split, (n_benign, n_malignant) in counts.items():
        for label, n in (("benign", n_benign), ("malignant", n_malignant)):
            for i in range(n):
                rel = f"images/{split}_{label}_{i:03d}.jpg"
                Image.fromarray(synthetic_rgb(rng, label == "malignant")).save(root / rel, quality=95)
                md5 = hashlib.md5((root / rel).read_bytes()).hexdigest()
                records.append(Record(rel, label, split, md5, 72, 72))
    out = root / "split"
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.csv", records)
    (out / "summary.json").write_text(json.dumps({"source_root": str(root)}))
    return out / "manifest.csv"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A one-epoch run with calibration.json and eval/test/metrics.json."""
    from melascan.evaluation.evaluate import evaluate_run
    from melascan.training.config import RunConfig
    from melascan.training.engine import train

    root = tmp_path_factory.mktemp("inference_run")
    manifest = make_dataset(root / "data", {"train": (8, 8), "val": (6, 6), "test": (4, 4)})
    cfg = RunConfig(
        model="test_efficientnet", pretrained="none", drop_rate=0.0, manifest=str(manifest), eda_json=None,
        image_size=IMAGE_SIZE, color_constancy="shades_of_gray", cache_dir=str(root / "cache"), recipe="C4",
        batch_size=8, epochs=1, warmup_epochs=0, lr=1e-3, patience=None, checkpoint_every=0, device="cpu", seed=0,
    )  # fmt: skip
    run = root / "run"
    train(cfg, run)
    evaluate_run(run, split="test", n_bootstrap=20, report=False)
    return run


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory) -> Path:
    """The model folder written by `melascan export RUN --out DIR`."""
    from melascan.cli import main

    out = tmp_path_factory.mktemp("model")
    assert main(["export", str(trained_run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def clf(exported):
    from melascan.inference import Classifier

    return Classifier(exported)


@pytest.fixture(scope="session")
def torch_run(trained_run):
    """``(model, cfg)`` of the run, as training and evaluation see it."""
    from melascan.training.runs import load_run

    return load_run(trained_run)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(123)
