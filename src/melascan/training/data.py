"""Training data: decode each image once, cache the pixels, augment tensors.

Every image of a split is decoded once (``imageio.load_rgb``) and reduced by
``preprocess.prepare_pixels(rgb, image_size, color_constancy)`` to a ``uint8``
square - exactly what inference does before ``normalize``. The ``N x S x S x 3``
array is written to ``<cache_dir>/<split>_<S>px_<cc>_<N>_<key>.npy`` (``key``: a
hash of the manifest's sha256, the split and the chosen rows), then memory-mapped:
the pages stay in RAM (page cache), shared by DataLoader workers and DDP ranks,
and later runs with the same manifest, size and colour constancy skip decoding.

Augmentation (``recipes``) runs on the cached ``uint8`` tensors; normalisation
(``normalize_batch``) runs on the batch on the training device.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, WeightedRandomSampler

from melascan.data.manifest import Manifest, Record
from melascan.errors import DataError
from melascan.imageio import load_rgb
from melascan.preprocess import prepare_pixels

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """The decoded images of one split: ``pixels`` N x S x S x 3 uint8, ``labels`` N int64,
    ``sources`` N strings (all ``""`` in a single-source manifest)."""

    split: str
    records: list[Record]
    pixels: np.ndarray
    labels: np.ndarray
    cache_path: Path

    @property
    def sources(self) -> np.ndarray:
        return np.array([r.source for r in self.records])

    @property
    def diagnoses(self) -> np.ndarray:
        return np.array([r.diagnosis for r in self.records])

    def class_counts(self) -> dict[str, int]:
        return {"benign": int((self.labels == 0).sum()), "malignant": int((self.labels == 1).sum())}


def select_records(manifest: Manifest, split: str, limit: int | None, seed: int) -> list[Record]:
    """The split's rows; with ``limit``, a seeded random subset of that size in manifest order."""
    records = manifest.sample(split, limit, seed)
    if not records:
        raise DataError(f"{manifest.path}: no images in split {split!r}")
    return records


def cache_path(cache_dir: str | Path, manifest_sha256: str, split: str, records: list[Record],
               image_size: int, color_constancy: str | None) -> Path:
    """Cache file name: split, size, colour constancy, count and a hash of manifest + rows."""
    digest = hashlib.sha256(f"{manifest_sha256}\n{split}\n".encode())
    for r in records:
        digest.update(f"{r.path}\t{r.md5}\n".encode())
    cc = color_constancy or "none"
    return Path(cache_dir) / f"{split}_{image_size}px_{cc}_{len(records)}_{digest.hexdigest()[:16]}.npy"


def decode_images(paths: list[Path], image_size: int, color_constancy: str | None, *,
                  out: np.ndarray, desc: str = "decoding", threads: int | None = None) -> None:
    """Decode and prepare every image into ``out[i]`` (threads: JPEG decode and resize release the GIL)."""
    from tqdm import tqdm

    def work(i: int) -> None:
        out[i] = prepare_pixels(load_rgb(paths[i]), image_size, color_constancy)

    threads = threads or min(8, available_cpus())
    with ThreadPoolExecutor(threads) as pool:
        for _ in tqdm(pool.map(work, range(len(paths))), total=len(paths), desc=desc, unit="img",
                      leave=False, mininterval=2.0):
            pass


def available_cpus() -> int:
    """CPU cores this process may use (the affinity mask, not the host's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def build_cache(manifest: Manifest, split: str, records: list[Record], cfg) -> Path:
    """Decode ``records`` into their cache file unless it already exists; return its path."""
    path = cache_path(cfg.cache_dir, manifest.sha256(), split, records, cfg.image_size, cfg.color_constancy)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    shape = (len(records), cfg.image_size, cfg.image_size, 3)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    try:
        files = [manifest.source_root / r.path for r in records]
        decode_images(files, cfg.image_size, cfg.color_constancy, out=out, desc=f"caching {split} images")
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("cached %d %s images at %d px in %s", len(records), split, cfg.image_size, path)
    return path


def keep_sources(records: list[Record], sources: list[str] | None) -> list[Record]:
    """The records of ``sources`` only (all of them when ``sources`` is empty or None)."""
    if not sources:
        return records
    wanted = set(sources)
    kept = [r for r in records if r.source in wanted]
    if not kept:
        found = sorted({r.source for r in records})
        raise DataError(f"no training images from source(s) {sorted(wanted)}; the manifest has {found}")
    return kept


def load_split(manifest: Manifest, split: str, cfg, *, build: bool = True) -> SplitData:
    """The split's cached pixels (memory-mapped) and labels; builds the cache if ``build``.
    The train split keeps only ``cfg.train_sources`` when set (validation keeps every source,
    so the history shows how the run does on the sources it never trained on)."""
    records = select_records(manifest, split, cfg.limit, cfg.seed)
    if split == "train":
        records = keep_sources(records, cfg.train_sources)
    if build:
        path = build_cache(manifest, split, records, cfg)
    else:
        path = cache_path(cfg.cache_dir, manifest.sha256(), split, records, cfg.image_size, cfg.color_constancy)
    pixels = np.load(path, mmap_mode="r")
    labels = np.array([r.label_id for r in records], dtype=np.int64)
    return SplitData(split, records, pixels, labels, path)


class CachedImageDataset(Dataset):
    """``(uint8 3xSxS tensor, label, index)`` from cached pixels, with an optional v2 transform."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, transform=None):
        if len(pixels) != len(labels):
            raise ValueError("pixels and labels differ in length")
        self.pixels, self.labels, self.transform = pixels, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = torch.from_numpy(np.array(self.pixels[index])).permute(2, 0, 1).contiguous()
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index]), index


def normalize_batch(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 NCHW -> float32 ``(x/255 - mean) / std``, the same arithmetic as ``preprocess.normalize``."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean_t) / std_t


# ---- samplers -------------------------------------------------------------------
def class_balanced_weights(labels: np.ndarray, sources: np.ndarray | None = None,
                           diagnoses: np.ndarray | None = None, diagnosis_balance: float = 0.0) -> torch.Tensor:
    """Per-sample weights ``1 / count(class)``: every class is drawn equally often.

    With ``sources``, ``1 / count(source, class)``: every (source, class) cell is drawn equally
    often, so no source's class balance (or size) can stand in for the label. With ``diagnoses``
    and ``diagnosis_balance`` b > 0, a cell's draws are shared between its diagnoses in
    proportion to ``count(diagnosis) ** (1 - b)`` (b = 1: each diagnosis equally often), so a
    rare look-alike (HAM10000's keratoses among its nevi) is not drowned by the common one.
    """
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise DataError("weighted sampling needs both classes in the training split")
    cells = [f"{s}\t{l}" for s, l in zip(sources if sources is not None else [""] * len(labels), labels)]
    _, cell_index, cell_counts = np.unique(cells, return_inverse=True, return_counts=True)
    weights = 1.0 / cell_counts[cell_index]
    if diagnoses is not None and diagnosis_balance > 0:
        groups = [f"{c}\t{d}" for c, d in zip(cells, diagnoses)]
        _, group_index, group_counts = np.unique(groups, return_inverse=True, return_counts=True)
        share = group_counts.astype(np.float64) ** (1.0 - diagnosis_balance)
        cell_of_group = np.zeros(len(group_counts), dtype=np.int64)
        cell_of_group[group_index] = cell_index
        share /= np.bincount(cell_of_group, weights=share)[cell_of_group]  # shares sum to 1 in each cell
        weights = share[group_index] / group_counts[group_index]
    return torch.as_tensor(weights, dtype=torch.double)


class EpochWeightedRandomSampler(WeightedRandomSampler):
    """``WeightedRandomSampler`` whose draw depends only on ``seed + epoch`` (reproducible, resumable)."""

    def __init__(self, weights: torch.Tensor, num_samples: int, seed: int):
        super().__init__(weights, num_samples, replacement=True, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + epoch)


class DistributedWeightedSampler(DistributedSampler):
    """Class-weighted draw with replacement, split between DDP ranks (each gets ``len/world`` samples)."""

    def __init__(self, dataset, weights: torch.Tensor, *, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.weights = weights

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = torch.multinomial(self.weights, self.total_size, replacement=True, generator=g).tolist()
        return iter(indices[self.rank : self.total_size : self.num_replicas])


def make_train_sampler(dataset, labels: np.ndarray, *, weighted: bool, seed: int, rank: int = 0,
                       world_size: int = 1, sources: np.ndarray | None = None, num_samples: int | None = None,
                       diagnoses: np.ndarray | None = None, diagnosis_balance: float = 0.0):
    """A sampler with ``set_epoch``, sharded over ranks: shuffled, or class-balanced (the seed's "WS"),
    or (``sources`` given) balanced over (source, class) cells, optionally sharing each cell's draws
    between its ``diagnoses`` (``class_balanced_weights``). ``num_samples`` images per epoch are
    drawn with replacement (uniformly when not ``weighted``); ``None`` = one pass over the split."""
    if weighted or num_samples is not None:
        weights = (class_balanced_weights(labels, sources, diagnoses, diagnosis_balance) if weighted
                   else torch.ones(len(labels), dtype=torch.double))
        if world_size == 1:
            return EpochWeightedRandomSampler(weights, num_samples or len(labels), seed)
        sampler = DistributedWeightedSampler(dataset, weights, num_replicas=world_size, rank=rank, seed=seed)
        if num_samples is not None:
            sampler.num_samples = math.ceil(num_samples / world_size)
            sampler.total_size = sampler.num_samples * world_size
        return sampler
    return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)


def make_eval_sampler(dataset, *, rank: int = 0, world_size: int = 1):
    """In-order shards (the last padded with repeats; ``index`` lets the caller de-duplicate)."""
    return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
