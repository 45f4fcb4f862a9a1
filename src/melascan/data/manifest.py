"""The split manifest: one row per image, shared by every stage.

``manifest.csv`` columns: ``path,label,split,md5,width,height`` and, in a manifest built
from several sources (``melascan prepare --mix``), a last column ``source`` (the data
set an image comes from, e.g. ``melanoma-10k`` or ``ham10000``) and, when a source records
one, ``diagnosis`` (HAM10000's ``dx``: mel, nv, bkl, df, vasc; empty where the source only
gives benign/malignant). ``path`` is relative to ``summary.json["source_root"]`` next to the
manifest.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melascan.errors import DataError
from melascan.serialization import file_sha256

LABELS = ("benign", "malignant")  # index = class id: benign 0, malignant 1
SPLITS = ("train", "val", "test")
COLUMNS = ("path", "label", "split", "md5", "width", "height")
SOURCE_COLUMN = "source"  # written only when some record has a source
DIAGNOSIS_COLUMN = "diagnosis"  # written only when some record has a diagnosis (after ``source``)


@dataclass(frozen=True)
class Record:
    path: str
    label: str
    split: str
    md5: str
    width: int
    height: int
    source: str = ""
    diagnosis: str = ""

    @property
    def label_id(self) -> int:
        return LABELS.index(self.label)


@dataclass
class Manifest:
    path: Path
    source_root: Path
    records: list[Record]

    def subset(self, split: str) -> list[Record]:
        return [r for r in self.records if r.split == split]

    def files(self, split: str) -> list[Path]:
        return [self.source_root / r.path for r in self.subset(split)]

    def label_ids(self, split: str) -> list[int]:
        return [r.label_id for r in self.subset(split)]

    def sources(self) -> list[str]:
        """The distinct non-empty sources, sorted (empty for a single-source manifest)."""
        return sorted({r.source for r in self.records if r.source})

    def sample(self, split: str, limit: int | None, seed: int) -> list[Record]:
        """The split's records, or a seeded random subset of ``limit`` of them (``seeded_subset``)."""
        records = self.subset(split)
        return [records[i] for i in seeded_subset(len(records), limit, seed)]

    def sha256(self) -> str:
        return file_sha256(self.path)


def seeded_subset(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset of at most ``limit`` of ``n`` items, in original
    order (all of them when ``limit`` is None); training and evaluation both use it."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def write_manifest(path: str | Path, records: list[Record]) -> None:
    """Write records in the given order, with ``\\n`` line endings (byte-reproducible)."""
    with_diagnosis = any(r.diagnosis for r in records)
    with_source = with_diagnosis or any(r.source for r in records)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        extra = ((SOURCE_COLUMN,) if with_source else ()) + ((DIAGNOSIS_COLUMN,) if with_diagnosis else ())
        writer.writerow(COLUMNS + extra)
        for r in records:
            row = [r.path, r.label, r.split, r.md5, r.width, r.height]
            writer.writerow(row + ([r.source] if with_source else []) + ([r.diagnosis] if with_diagnosis else []))


def read_manifest(path: str | Path, source_root: str | Path | None = None) -> Manifest:
    """Read ``manifest.csv``; the source root comes from the sibling ``summary.json``
    unless given."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise DataError(f"manifest not found: {path} (run `melascan prepare` first)")
    if source_root is None:
        summary = path.with_name("summary.json")
        if not summary.is_file():
            raise DataError(f"{summary} is missing: cannot tell where the images are")
        try:
            source_root = json.loads(summary.read_text())["source_root"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{summary}: not a valid summary (no source_root: {exc})") from None
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)}")
        records = []
        for i, row in enumerate(reader, start=2):
            if row["label"] not in LABELS or row["split"] not in SPLITS:
                raise DataError(f"{path}:{i}: bad label or split {row['label']!r}/{row['split']!r}")
            try:
                width, height = int(row["width"]), int(row["height"])
            except (TypeError, ValueError):
                raise DataError(f"{path}:{i}: width/height must be integers") from None
            records.append(Record(row["path"], row["label"], row["split"], row["md5"], width, height,
                                  row.get(SOURCE_COLUMN) or "", row.get(DIAGNOSIS_COLUMN) or ""))
    return Manifest(path=path, source_root=Path(source_root), records=records)
