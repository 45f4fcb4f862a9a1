"""What ``melascan evaluate`` scores: labelled image sets (``Target``) and the leakage
guard that finds which of their images a run has seen.

A target is a manifest split, a folder with ``benign``/``malignant`` sub-folders, or a
labelled CSV (``melascan.data.labelled``); the guard compares it with the run's train and
val images by MD5 and perceptual hash (``melascan.data.overlap``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from melascan.data.manifest import LABELS, Manifest, seeded_subset
from melascan.errors import DataError
from melascan.runfolder import safe_name

log = logging.getLogger(__name__)

# --- what is evaluated --------------------------------------------------------------------


@dataclass
class Target:
    """A labelled image set to score: ``root / paths[i]`` has class id ``labels[i]``."""

    name: str
    source: dict  # {"kind": "split", "split": ..., "manifest": ...} or {"kind": "folder", ...}
    root: Path
    paths: list[str]
    labels: np.ndarray
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    sources: list[str] | None = None  # per image, for a multi-source manifest split
    groups: list[str] | None = None  # per image, its lesion where a CSV says (several pictures per lesion)

    def files(self) -> list[Path]:
        return [self.root / p for p in self.paths]


def split_target(manifest: Manifest, split: str, *, limit: int | None = None) -> Target:
    """The images of one manifest split (optionally a seeded subset of ``limit``)."""
    records = manifest.subset(split)
    if not records:
        raise DataError(f"{manifest.path}: the {split!r} split is empty")
    labels = np.array([r.label_id for r in records], dtype=int)
    idx = seeded_subset(len(records), limit, seed=0)
    return Target(
        name=split,
        source={"kind": "split", "split": split, "manifest": str(manifest.path), "limit": limit},
        root=manifest.source_root,
        paths=[records[i].path for i in idx],
        labels=labels[idx],
        sources=[records[i].source for i in idx] if manifest.sources() else None,
    )


def folder_target(folder: str | Path, name: str | None = None, *, workers: int = 1) -> tuple[Target, dict]:
    """Every readable image under ``folder`` inside a folder named ``benign`` or
    ``malignant`` (any depth, the layout ``melascan prepare`` reads), decoded and hashed
    once by ``melascan.data.scan.scan_images``. Returns the target and
    ``{path: ImageInfo}`` (md5 + phash) for the leakage guard; unreadable files go to
    ``target.skipped``."""
    from melascan.data.scan import scan_images

    folder = Path(folder)
    scan = scan_images(folder, workers=workers, progress=False)
    if not scan.images:
        raise DataError(f"{folder}: no readable image in the benign/malignant folders")
    if scan.ignored:
        log.warning("%s: %d file(s) outside benign/malignant folders ignored", folder, len(scan.ignored))
    for s in scan.skipped:
        log.warning("skipped %s: %s", folder / s.path, s.reason)
    target = Target(
        name=safe_name(name or folder.resolve().name),
        source={"kind": "folder", "folder": str(folder.resolve()), "ignored_outside_class_folders": len(scan.ignored)},
        root=folder,
        paths=[i.path for i in scan.images],
        labels=np.array([LABELS.index(i.label) for i in scan.images], dtype=int),
        skipped=[{"path": s.path, "reason": s.reason} for s in scan.skipped],
    )
    return target, {i.path: i for i in scan.images}


def csv_target(csv_file: str | Path, name: str | None = None, *, images_dir: str | Path | None = None,
               workers: int = 1) -> tuple[Target, dict]:
    """The images of a labelled CSV (``melascan.data.labelled``: ``path,label``, PH2's
    ``labels.csv``, HAM10000's metadata), decoded and hashed once for the leakage guard.
    Paths in the target are absolute (``root`` is ``/``)."""
    from concurrent.futures import ProcessPoolExecutor

    from melascan.data.labelled import read_labelled_csv
    from melascan.data.scan import ImageInfo, _inspect_job

    csv_file = Path(csv_file)
    listed, skipped = read_labelled_csv(csv_file, images_dir)
    jobs = [("/", str(item.path.resolve()).lstrip("/"), item.label) for item in listed]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(_inspect_job, jobs, chunksize=32))
    infos = [r for r in results if isinstance(r, ImageInfo)]
    skipped += [{"path": r.path, "reason": r.reason} for r in results if not isinstance(r, ImageInfo)]
    for s in skipped:
        log.warning("skipped %s: %s", s["path"], s["reason"])
    if not infos:
        raise DataError(f"{csv_file}: no readable image")
    lesion_of = {str(item.path.resolve()).lstrip("/"): (item.row.get("lesion_id") or "") for item in listed}
    lesions = [lesion_of.get(i.path, "") for i in infos]
    target = Target(
        name=safe_name(name or csv_file.stem),
        source={"kind": "csv", "csv": str(csv_file.resolve()), "images_dir": str(images_dir) if images_dir else None},
        root=Path("/"),
        paths=[i.path for i in infos],
        labels=np.array([LABELS.index(i.label) for i in infos], dtype=int),
        skipped=skipped,
        groups=lesions if all(lesions) else None,
    )
    return target, {i.path: i for i in infos}


# --- leakage guard -------------------------------------------------------------------------

#: Splits of the run's manifest whose images the run has "seen": train (weights) and val
#: (early stopping, temperature and thresholds).
SEEN_SPLITS = ("train", "val")


def split_hashes(manifest: Manifest, target: Target) -> dict:
    """``{path: ImageInfo}`` of a manifest split's images, from the ``hashes.csv`` that
    ``melascan prepare`` writes beside the manifest (computed where missing)."""
    from melascan.data.overlap import read_hashes
    from melascan.data.scan import ImageInfo, inspect_image

    known = read_hashes(manifest.path.with_name("hashes.csv"))
    md5_of = {r.path: r.md5 for r in manifest.records}
    out = {}
    for path, label in zip(target.paths, target.labels):
        info = known.get(path)
        if info is None or info.md5 != md5_of[path]:
            md5, width, height, hash_hex = inspect_image(target.root / path)
            info = ImageInfo(path, LABELS[label], md5, width, height, hash_hex)
        out[path] = info
    return out


def find_seen(
    target: Target, images: dict, manifest: Manifest, max_distance: int, run_paths: set[str] | None = None
) -> tuple[np.ndarray, list[dict]]:
    """Which target images the run has seen: same bytes (MD5) or a perceptual hash within
    ``max_distance`` bits of an image in the run's train or val split
    (``melascan.data.overlap.find_overlap``). ``run_paths``: the manifest paths the run
    really used (a run trained with ``limit`` saw only part of its splits); None = all.
    Returns ``(mask, overlap rows)``."""
    from melascan.data.manifest import Record
    from melascan.data.overlap import find_overlap

    records = [
        Record(p, LABELS[y], "test", images[p].md5, images[p].width, images[p].height)
        for p, y in zip(target.paths, target.labels)
    ]
    rows = [
        r
        for r in find_overlap(records, images, target.root, manifest.path, max_distance)
        if r["ref_split"] in SEEN_SPLITS and (run_paths is None or r["ref_path"] in run_paths)
    ]
    seen = {r["path"] for r in rows}
    return np.array([p in seen for p in target.paths], dtype=bool), rows


def leakage_summary(target: Target, leaked: np.ndarray, rows: list[dict], *, max_distance: int | None) -> dict:
    """Counts for metrics.json: images of the target also in the run's train / val split."""

    def paths(split=None, kinds=None):
        return {
            r["path"]
            for r in rows
            if (split is None or r["ref_split"] == split) and (kinds is None or r["kind"] in kinds)
        }

    return {
        "checked": int(len(target.paths)),
        "against": "train and val images the run used (from its manifest)",
        "method": f"exact MD5 + perceptual hash within {max_distance} bits",
        "max_distance": max_distance,
        "n_in_train": len(paths("train")),
        "n_in_val": len(paths("val")),
        "n_exact": len(paths(kinds=("exact", "same_file"))),
        "n_near": len(paths(kinds=("near",)) - paths(kinds=("exact", "same_file"))),
        "n_leaked": int(leaked.sum()),
        "n_leaked_malignant": int(target.labels[leaked].sum()),
    }


def used_paths(manifest: Manifest, cfg) -> set[str] | None:
    """Manifest paths of the train/val images a run trained with ``cfg.limit`` really used
    (the training code's own seeded selection); None when it used whole splits."""
    if getattr(cfg, "limit", None) is None:
        return None
    return {r.path for split in SEEN_SPLITS for r in manifest.sample(split, cfg.limit, cfg.seed)}
