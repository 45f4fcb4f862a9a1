"""Find the labelled images of a dataset folder and check every one of them.

A file's label is the class folder it sits in (``benign`` or ``malignant``, at any
depth, case-insensitive): ``train/benign/x.jpg``, ``benign/x.jpg`` and
``site1/2020/malignant/a/y.jpg`` all work. Files outside class folders are ignored,
hidden files and folders (``.DS_Store``, ``.git``) too. Every other file is fully
decoded, so truncated or non-image files are caught here and listed as skipped,
never passed on to training.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from melascan.data.dedup import md5_file, phash
from melascan.data.manifest import LABELS
from melascan.errors import DataError, ImageError
from melascan.imageio import load_rgb


@dataclass(frozen=True)
class ImageInfo:
    """One readable image: ``path`` is relative to the source root, with ``/``."""

    path: str
    label: str
    md5: str
    width: int
    height: int
    phash: str  # hex of the 256-bit perceptual hash

    @property
    def top_folder(self) -> str:
        """First folder of the path (``train`` / ``test`` in the original layout)."""
        return self.path.split("/", 1)[0].lower()


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why."""

    path: str
    label: str
    reason: str


@dataclass
class ScanResult:
    images: list[ImageInfo]
    skipped: list[Skipped]
    ignored: list[str] = field(default_factory=list)  # files outside class folders


def label_of(rel_path: str) -> str | None:
    """``benign``/``malignant`` from the folders of ``rel_path``, ``None`` outside class
    folders; ``DataError`` if both names appear."""
    folders = {part.lower() for part in rel_path.split("/")[:-1]}
    found = [label for label in LABELS if label in folders]
    if len(found) > 1:
        raise DataError(f"{rel_path}: both a benign and a malignant folder in the path")
    return found[0] if found else None


def list_files(src: Path) -> list[str]:
    """Relative ``/`` paths of every non-hidden file under ``src``, sorted."""
    files = []
    for folder, dirs, names in os.walk(src, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith("."):
                files.append(Path(folder, name).relative_to(src).as_posix())
    return sorted(files)


def inspect_image(path: str | os.PathLike) -> tuple[str, int, int, str]:
    """``(md5, width, height, phash_hex)`` of a fully decoded image; ``ImageError`` if bad.

    Width and height are those of the decoded, EXIF-rotated image (what models see).
    """
    rgb = load_rgb(path)
    height, width = rgb.shape[:2]
    return md5_file(path), int(width), int(height), str(phash(rgb))


def _inspect_job(job: tuple[str, str, str]) -> ImageInfo | Skipped:
    """Worker: ``(root, rel_path, label)`` -> ``ImageInfo`` or ``Skipped`` (picklable)."""
    root, rel, label = job
    full = os.path.join(root, rel)
    try:
        md5, width, height, hash_hex = inspect_image(full)
    except ImageError as exc:
        reason = str(exc)
        if reason.startswith(full + ": "):  # the relative path goes in its own column
            reason = reason[len(full) + 2 :]
        return Skipped(rel, label, reason)
    except OSError as exc:  # permission denied, I/O error...
        return Skipped(rel, label, f"cannot read the file ({exc.strerror or exc})")
    return ImageInfo(rel, label, md5, width, height, hash_hex)


def scan_images(src: str | os.PathLike, workers: int = 2, progress: bool = True) -> ScanResult:
    """Decode and hash every file in the class folders of ``src``.

    Results are sorted by path, so they never depend on file-system order or on
    how the work was spread over ``workers`` processes.
    """
    root = Path(src)
    if not root.exists():
        raise DataError(f"source folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"expected a folder of images, got a file: {root}")
    jobs, skipped, ignored = [], [], []
    for rel in list_files(root):
        try:
            label = label_of(rel)
        except DataError:
            skipped.append(Skipped(rel, "", "ambiguous label: both benign and malignant folders in the path"))
            continue
        if label is None:
            ignored.append(rel)
        else:
            jobs.append((str(root), rel, label))
    if not jobs:
        raise DataError(
            f"no files in class folders under {root}: expected folders named "
            "benign/ and malignant/ (e.g. train/benign/*.jpg)"
        )
    bar = tqdm(total=len(jobs), desc="hashing images", unit="img", disable=not progress)
    results: list[ImageInfo | Skipped] = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_inspect_job, jobs, chunksize=64):
                results.append(result)
                bar.update()
    else:
        for job in jobs:
            results.append(_inspect_job(job))
            bar.update()
    bar.close()
    images = [r for r in results if isinstance(r, ImageInfo)]
    skipped += [r for r in results if isinstance(r, Skipped)]
    return ScanResult(
        images=sorted(images, key=lambda i: i.path),
        skipped=sorted(skipped, key=lambda s: s.path),
        ignored=ignored,
    )
