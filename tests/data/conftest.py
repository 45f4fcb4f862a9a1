"""Synthetic datasets for the data-stage tests (tiny PIL images in tmp folders)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pattern_image(seed: int, size: int = 64) -> Image.Image:
    """A random colour pattern (16x16 cells, bicubic): every seed gives a perceptually
    distinct image (256-bit phash ~110+ bits apart), while a brightened, re-encoded
    copy stays within a few bits. Much smoother patterns would make phash unstable."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)


def brightened_copy(img: Image.Image, delta: int = 12, quality: int = 80) -> bytes:
    """The same picture slightly brighter and re-encoded: a near duplicate."""
    arr = np.clip(np.asarray(img, dtype=int) + delta, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def save_jpeg(img: Image.Image, path: Path, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="JPEG", quality=quality)
    return path


# folder -> number of distinct images
LAYOUT = {
    "train/benign": 14,
    "train/malignant": 10,
    "test/benign": 8,
    "test/malignant": 6,
}


def make_dataset(root: Path, layout: dict[str, int] = LAYOUT, seed0: int = 0) -> dict[str, list[Path]]:
    """Write ``layout`` as distinct pattern images; returns folder -> files."""
    files: dict[str, list[Path]] = {}
    seed = seed0
    for folder, n in layout.items():
        files[folder] = []
        for i in range(n):
            files[folder].append(save_jpeg(pattern_image(seed), root / folder / f"img_{seed:03d}.jpg"))
            seed += 1
    return files


@pytest.fixture()
def synth():
    """This module, for its image helpers (tests cannot import conftest by name)."""
    return sys.modules[__name__]


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """38 distinct images, plus:

    * ``test/benign/dup_of_train.jpg``: byte-identical copy of a train/benign image
      (an exact duplicate across the official train/test folders);
    * ``train/malignant/bright_copy.jpg``: brightened, re-encoded copy of
      ``train/malignant/img_014.jpg`` (a near duplicate).
    """
    root = tmp_path / "src"
    files = make_dataset(root)
    original = files["train/benign"][0]
    (root / "test/benign/dup_of_train.jpg").write_bytes(original.read_bytes())
    near_source = root / "train/malignant/img_014.jpg"
    (root / "train/malignant/bright_copy.jpg").write_bytes(brightened_copy(Image.open(near_source)))
    return root
