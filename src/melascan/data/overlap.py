"""Overlap between two prepared splits, e.g. the official test folder vs the seed split.

``melascan prepare ... --reference OTHER/manifest.csv`` writes ``overlap.csv``: one
row per (image of this manifest, image of the reference manifest) that are the
same file, byte-identical (same MD5) or near duplicates (phash distance within
``max_distance``). Evaluating a model trained on the reference split on this
manifest's test images should leave out (or report separately) the images that
the model saw during training or model selection::

    seen = seen_paths("data/official/overlap.csv")   # test paths seen in ref train/val

Each prepare run also writes ``hashes.csv`` (MD5 and phash of every readable
image) so that overlaps are found without decoding the images again.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import imagehash

from melascan.data.dedup import near_duplicate_pairs
from melascan.data.manifest import SPLITS, Record, read_manifest
from melascan.data.scan import ImageInfo, inspect_image
from melascan.errors import DataError, ImageError
from melascan.serialization import file_sha256

HASH_COLUMNS = ("path", "label", "md5", "phash", "width", "height")
OVERLAP_COLUMNS = ("path", "label", "split", "ref_path", "ref_label", "ref_split", "kind", "distance")


def write_hashes(path: str | Path, images: list[ImageInfo]) -> None:
    """Write ``hashes.csv`` (sorted by path)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HASH_COLUMNS)
        for i in sorted(images, key=lambda i: i.path):
            writer.writerow([i.path, i.label, i.md5, i.phash, i.width, i.height])


def read_hashes(path: str | Path) -> dict[str, ImageInfo]:
    """``hashes.csv`` -> ``{path: ImageInfo}``; empty when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {
            row["path"]: ImageInfo(row["path"], row["label"], row["md5"], int(row["width"]), int(row["height"]), row["phash"])
            for row in csv.DictReader(fh)
        }


def _reference_images(reference: Path) -> tuple[list[Record], dict[str, ImageInfo], Path]:
    """The reference manifest's records, their hashes (from its hashes.csv, or computed)
    and its source root."""
    ref = read_manifest(reference)
    known = read_hashes(ref.path.with_name("hashes.csv"))
    infos = {}
    for r in ref.records:
        info = known.get(r.path)
        if info is None or info.md5 != r.md5:
            try:
                md5, width, height, hash_hex = inspect_image(ref.source_root / r.path)
            except ImageError as exc:
                raise DataError(f"reference manifest {ref.path}: {exc}") from None
            info = ImageInfo(r.path, r.label, md5, width, height, hash_hex)
        infos[r.path] = info
    return ref.records, infos, ref.source_root


def find_overlap(
    records: list[Record], images: dict[str, ImageInfo], src: Path, reference: Path, max_distance: int
) -> list[dict]:
    """Rows of ``overlap.csv`` between ``records`` (hashes in ``images``, files under
    ``src``) and the manifest at ``reference``."""
    ref_records, ref_infos, ref_root = _reference_images(Path(reference))
    ref_split = {r.path: r for r in ref_records}
    mine = {r.path: r for r in records}
    matches: dict[tuple[str, str], int] = {}
    by_md5: dict[str, list[str]] = {}
    for p, info in ref_infos.items():
        by_md5.setdefault(info.md5, []).append(p)
    for p in mine:
        for q in by_md5.get(images[p].md5, ()):
            matches[(p, q)] = 0
    near = near_duplicate_pairs(
        {p: imagehash.hex_to_hash(images[p].phash) for p in mine},
        {q: imagehash.hex_to_hash(i.phash) for q, i in ref_infos.items()},
        max_distance=max_distance,
    )
    for p, q, dist in near:
        matches.setdefault((p, q), dist)
    rows = []
    for (p, q), dist in sorted(matches.items()):
        if images[p].md5 == ref_infos[q].md5:
            same = os.path.samefile(src / p, ref_root / q) if (ref_root / q).exists() else False
            kind = "same_file" if same else "exact"
        else:
            kind = "near"
        r, rr = mine[p], ref_split[q]
        rows.append(dict(path=p, label=r.label, split=r.split, ref_path=q, ref_label=rr.label,
                         ref_split=rr.split, kind=kind, distance=dist))
    return rows


def overlap_summary(reference: Path, records: list[Record], rows: list[dict]) -> dict:
    """Per split of this manifest: how many images match something in each reference split,
    and in the reference's train or val (``seen``)."""
    matched: dict[str, dict[str, set[str]]] = {s: {t: set() for t in (*SPLITS, "seen")} for s in SPLITS}
    for row in rows:
        matched[row["split"]][row["ref_split"]].add(row["path"])
        if row["ref_split"] in ("train", "val"):
            matched[row["split"]]["seen"].add(row["path"])
    return {
        "manifest": str(Path(os.path.abspath(reference))),
        "manifest_sha256": file_sha256(reference),
        "images_per_split": {s: sum(r.split == s for r in records) for s in SPLITS},
        "images_matching_reference": {s: {t: len(v) for t, v in m.items()} for s, m in matched.items()},
        "note": "'seen' = matches an image of the reference's train or val split (exact or near duplicate)",
    }


def write_overlap(path: str | Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=OVERLAP_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def seen_paths(overlap_csv: str | Path, ref_splits=("train", "val"), splits=("test",)) -> set[str]:
    """Paths (of this manifest's ``splits``) that match an image of the reference's
    ``ref_splits``: the images a reference-trained model has already seen."""
    path = Path(overlap_csv)
    if not path.is_file():
        raise DataError(f"overlap file not found: {path} (run prepare with --reference)")
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["path"] for row in csv.DictReader(fh) if row["split"] in splits and row["ref_split"] in ref_splits}
