"""``melascan prepare --mix``: one training manifest from several sources.

melanoma-10k confounds source with label (its malignant class holds every HAM10000
melanoma, none of its benign images come from HAM10000), so a model trained on it
alone learns "which collection is this". The mix adds HAM10000, whose benign and
malignant lesions come from the same clinics and dermatoscopes:

* the **seed split** (``base``, written by ``melascan prepare``): its test split is kept
  exactly; its train and val splits lose the ``--exclude`` files (copies of an external
  test set: never trained or selected on) and every near duplicate of them;
* the **rest of melanoma-10k** (images the seed split did not draw) joins train, except
  near duplicates of a seed val/test or an excluded image;
* **HAM10000** (``mel`` -> malignant; ``nv``, ``bkl``, ``df``, ``vasc`` -> benign; ``bcc`` and
  ``akiec`` left out): split 70/15/15 **by lesion_id**, stratified by label.

One image, one copy: a HAM melanoma that melanoma-10k also holds (``in_melanoma10k.csv``)
is kept as the HAM10000 file (200x150, like every HAM benign image, so resolution does not
tell the classes apart within HAM10000), unless its melanoma-10k copy sits in the seed
val/test split, which is kept exactly. Groups (near duplicates by 256-bit phash, byte copies,
HAM lesions, the HAM<->melanoma-10k copy list) land whole in one split.

Outputs in ``out``: ``manifest.csv`` (with ``source`` and ``diagnosis`` columns: HAM10000's
``dx``, empty for melanoma-10k; paths relative to the common
root of the sources), ``summary.json``, ``leakage.csv``, ``skipped.csv``, ``hashes.csv`` and
``eval/ham_val.csv`` / ``eval/ham_test.csv`` (every HAM10000 file of the val/test lesions,
HAM resolution, ``path,label,lesion_id,dx``) for ``melascan evaluate --csv``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np

from melascan.data.dedup import DEFAULT_MAX_DISTANCE, near_duplicate_pairs
from melascan.data.manifest import LABELS, SPLITS, Record, read_manifest, write_manifest
from melascan.data.overlap import read_hashes, write_hashes
from melascan.data.prepare import LEAKAGE_COLUMNS, SKIPPED_COLUMNS, _write_csv
from melascan.data.scan import ImageInfo, Skipped, _inspect_job
from melascan.data.split import connected_groups, split_groups
from melascan.errors import DataError
from melascan.serialization import file_sha256

log = logging.getLogger(__name__)

M10K, HAM = "melanoma-10k", "ham10000"
#: HAM10000 diagnosis -> binary label; missing (bcc, akiec) = left out of the binary task.
HAM_LABELS = {"mel": "malignant", "nv": "benign", "bkl": "benign", "df": "benign", "vasc": "benign"}
EVAL_COLUMNS = ("path", "label", "lesion_id", "dx")


@dataclass
class MixConfig:
    base: Path  # a seed prepare folder (manifest.csv, summary.json, hashes.csv)
    ham: Path  # HAM10000 folder: HAM10000_metadata.csv, images/, in_melanoma10k.csv
    out: Path
    exclude: Path | None = None  # paths (relative to melanoma-10k) never trained or selected on
    ham_ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    add_rest: bool = True  # unused melanoma-10k images join train
    seed: int = 42
    max_distance: int = DEFAULT_MAX_DISTANCE
    workers: int = 2
    progress: bool = True

    def settings(self) -> dict:
        return {"mode": "mix", "seed": self.seed, "ham_ratios": list(self.ham_ratios),
                "add_rest": self.add_rest, "max_distance": self.max_distance,
                "ham_labels": HAM_LABELS, "exclude": str(self.exclude) if self.exclude else None}


def read_exclude_list(path: Path) -> list[str]:
    """One relative path per line; blank lines and ``#`` comments ignored."""
    if not path.is_file():
        raise DataError(f"--exclude file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted({line for line in lines if line and not line.startswith("#")})


def read_ham_metadata(ham: Path) -> list[dict]:
    """HAM10000 metadata rows with ``image_id``, ``lesion_id``, ``dx`` (``DataError`` if malformed)."""
    path = ham / "HAM10000_metadata.csv"
    if not path.is_file():
        raise DataError(f"{path} not found (expected the HAM10000 folder)")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"image_id", "lesion_id", "dx"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing columns {sorted(missing)}")
        return sorted(reader, key=lambda r: r["image_id"])


def read_copy_list(ham: Path) -> dict[str, str]:
    """``in_melanoma10k.csv``: HAM ``image_id`` -> melanoma-10k relative path (empty if absent)."""
    path = ham / "in_melanoma10k.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["image_id"]: r["melanoma10k_file"] for r in csv.DictReader(fh)}


def _hash_ham(ham: Path, rows: list[dict], workers: int, progress: bool) -> tuple[list[ImageInfo], list[Skipped]]:
    from tqdm import tqdm

    jobs = [(str(ham), f"images/{r['image_id']}.jpg", HAM_LABELS[r["dx"]]) for r in rows]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(_inspect_job, jobs, chunksize=64), total=len(jobs),
                            desc="hashing HAM10000", unit="img", disable=not progress))
    return ([r for r in results if isinstance(r, ImageInfo)], [r for r in results if isinstance(r, Skipped)])


def _prefixed(info: ImageInfo, prefix: str) -> ImageInfo:
    return ImageInfo(f"{prefix}/{info.path}", info.label, info.md5, info.width, info.height, info.phash)


def prepare_mix(cfg: MixConfig) -> dict:
    """Build the multi-source split and write its files into ``cfg.out``; return the summary."""
    base = read_manifest(cfg.base)
    m10k_root, ham_root = Path(os.path.abspath(base.source_root)), Path(os.path.abspath(cfg.ham))
    root = Path(os.path.commonpath([m10k_root, ham_root]))
    m_pre, h_pre = m10k_root.relative_to(root).as_posix(), ham_root.relative_to(root).as_posix()
    if not m_pre or not h_pre or m_pre == h_pre:
        raise DataError("the melanoma-10k and HAM10000 folders must be two different folders")
    m10k_hashes = read_hashes(base.path.with_name("hashes.csv"))
    if not m10k_hashes:
        raise DataError(f"{base.path.with_name('hashes.csv')} missing: re-run `melascan prepare` for the base split")

    # every candidate image, keyed by its path relative to the common root
    images: dict[str, ImageInfo] = {f"{m_pre}/{p}": _prefixed(i, m_pre) for p, i in m10k_hashes.items()}
    source = {k: M10K for k in images}
    seed_split = {f"{m_pre}/{r.path}": r.split for r in base.records}
    missing = [k for k in seed_split if k not in images]
    if missing:
        raise DataError(f"{len(missing)} base manifest images are not in its hashes.csv (e.g. {missing[0]})")
    meta = [r for r in read_ham_metadata(ham_root) if r["dx"] in HAM_LABELS]
    ham_infos, skipped = _hash_ham(ham_root, meta, cfg.workers, cfg.progress)
    for info in ham_infos:
        key = f"{h_pre}/{info.path}"
        images[key], source[key] = _prefixed(info, h_pre), HAM
    skipped = [Skipped(f"{h_pre}/{s.path}", s.label, s.reason) for s in skipped]
    lesion = {f"{h_pre}/images/{r['image_id']}.jpg": r["lesion_id"] for r in meta}
    dx = {f"{h_pre}/images/{r['image_id']}.jpg": r["dx"] for r in meta}

    # edges: near duplicates (all sources), HAM lesions, the HAM -> melanoma-10k copy list
    phashes = {k: imagehash.hex_to_hash(i.phash) for k, i in images.items()}
    near = near_duplicate_pairs(phashes, max_distance=cfg.max_distance)
    copies = []
    for image_id, m_path in read_copy_list(ham_root).items():
        h_key, m_key = f"{h_pre}/images/{image_id}.jpg", f"{m_pre}/{m_path}"
        if h_key in images and m_key in images:
            copies.append((h_key, m_key, -1))
    by_lesion: dict[str, list[str]] = defaultdict(list)
    for key in sorted(k for k in images if source[k] == HAM):
        by_lesion[lesion[key]].append(key)
    lesion_edges = [(keys[0], k, -2) for keys in by_lesion.values() for k in keys[1:]]
    groups = connected_groups(sorted(images), near + copies + lesion_edges)
    members: dict[str, list[str]] = defaultdict(list)
    for key, group in groups.items():
        members[group].append(key)

    excluded_listed = read_exclude_list(cfg.exclude) if cfg.exclude else []
    excluded = {f"{m_pre}/{p}" for p in excluded_listed} & set(images)
    copy_of = {h: m for h, m, _ in copies}
    status: dict[str, str] = {}  # key -> split, or why it is not in the manifest
    for group, keys in sorted(members.items()):
        pinned = {seed_split[k] for k in keys if k in seed_split}
        split = next((s for s in ("test", "val", "train") if s in pinned), None)
        tainted = bool(excluded & set(keys))
        for key in keys:
            if key in seed_split:
                status[key] = seed_split[key]
            elif split in ("val", "test") and source[key] == M10K:
                status[key] = f"removed: near duplicate of a seed {split} image"
            elif split in ("val", "test") and copy_of.get(key) in seed_split:
                status[key] = f"removed: copy of a seed {split} image"
            else:
                status[key] = split or ""  # "" = to be split below
        if tainted:  # never train or select on a held-out copy or its near duplicates
            for key in keys:
                if status[key] in ("train", "val", ""):
                    status[key] = "removed: held-out copy or its near duplicate (--exclude)"
    # one copy of an image: outside the seed val/test, the HAM file replaces its melanoma-10k copy
    for h_key, m_key in copy_of.items():
        if status[m_key] in ("train", ""):
            status[m_key] = "removed: replaced by its HAM10000 file"
    # byte-identical melanoma-10k copies among the rest: keep the first path
    first_of_md5: dict[str, str] = {}
    for key in sorted(images):
        if status[key] == "" and source[key] == M10K:
            md5 = images[key].md5
            if md5 in first_of_md5:
                status[key] = "removed: byte copy of another melanoma-10k file"
            else:
                first_of_md5[md5] = key
    # the groups left: HAM lesions split by ratios, the melanoma-10k rest joins train
    open_groups = {g: [k for k in keys if status[k] == ""] for g, keys in members.items()}
    open_groups = {g: keys for g, keys in open_groups.items() if keys}
    ham_groups = {g: keys for g, keys in open_groups.items() if any(source[k] == HAM for k in keys)}
    labels_of = {g: "malignant" if any(images[k].label == "malignant" for k in keys) else "benign"
                 for g, keys in ham_groups.items()}
    rng = np.random.default_rng(cfg.seed)
    ham_assignment = split_groups(labels_of, {g: len(k) for g, k in ham_groups.items()}, cfg.ham_ratios, rng)
    for group, keys in open_groups.items():
        for key in keys:
            if group in ham_assignment:
                status[key] = ham_assignment[group]
            else:
                status[key] = "train" if cfg.add_rest else "unused"
    conflicting = [k for g, keys in members.items() if len({images[k].label for k in keys}) > 1 for k in keys
                   if status[k] in ("train",) and k not in seed_split and source[k] == M10K]
    for key in conflicting:
        status[key] = "removed: near duplicate of an image with the other label"

    records = sorted(
        (Record(k, images[k].label, status[k], images[k].md5, images[k].width, images[k].height, source[k],
                dx.get(k, ""))
         for k in images if status[k] in SPLITS),
        key=lambda r: (SPLITS.index(r.split), r.source, LABELS.index(r.label), r.path),
    )
    leakage = _leakage(near, copies, images, status, source)
    across = [r for r in leakage if r["across_splits"] and not (r["path_a"] in seed_split and r["path_b"] in seed_split)]
    if across:
        raise RuntimeError(f"internal error: the mix put {len(across)} duplicate pairs in two splits")
    summary = _summary(cfg, base, root, records, status, source, excluded_listed, excluded, copies, near, leakage)
    _write(cfg.out, records, summary, leakage, skipped, list(images.values()), status, source, lesion, dx)
    return summary


def _leakage(near, copies, images, status, source) -> list[dict]:
    rows = []
    for a, b, dist in near + copies:
        sa, sb = status[a], status[b]
        kind = "copy_list" if dist == -1 else ("exact" if images[a].md5 == images[b].md5 else "near")
        across = sa in SPLITS and sb in SPLITS and sa != sb
        rows.append(dict(kind=f"{kind}:{source[a]}/{source[b]}", distance=max(dist, 0),
                         path_a=a, label_a=images[a].label, split_a=sa.split(":")[0],
                         path_b=b, label_b=images[b].label, split_b=sb.split(":")[0], across_splits=int(across)))
    return rows


def _summary(cfg, base, root, records, status, source, excluded_listed, excluded, copies, near, leakage) -> dict:
    counts: dict = {}
    for src in sorted({r.source for r in records}) + ["total"]:
        rows = [r for r in records if src == "total" or r.source == src]
        counts[src] = {s: {**{l: sum(r.split == s and r.label == l for r in rows) for l in LABELS},
                           "total": sum(r.split == s for r in rows)} for s in SPLITS}
    reasons = Counter(v for v in status.values() if v not in SPLITS)
    return {
        "source_root": str(root),
        "settings": cfg.settings(),
        "sources": {M10K: str(Path(os.path.abspath(base.source_root))), HAM: str(Path(os.path.abspath(cfg.ham)))},
        "base_manifest": {"path": str(base.path.resolve()), "sha256": base.sha256()},
        "counts": counts,
        "excluded": {"listed": len(excluded_listed), "found": len(excluded),
                     "removed_from_train_val": sum(status[k].startswith("removed: held-out") for k in excluded),
                     "kept_in_seed_test": sum(status[k] == "test" for k in excluded),
                     "near_duplicates_removed": sum(v.startswith("removed: held-out") for v in status.values())
                     - sum(status[k].startswith("removed: held-out") for k in excluded)},
        "not_used": dict(sorted(reasons.items())),
        "cross_source": {"copy_list_pairs": len(copies),
                         "near_pairs": sum(1 for a, b, _ in near if source[a] != source[b])},
        "near_duplicates": {"pairs": len(near),
                            "pairs_across_splits": sum(r["across_splits"] for r in leakage),
                            "note": "pairs across splits can only be ones the base split already had"},
        "licences": {M10K: "as published (Kaggle: Melanoma Skin Cancer Dataset of 10000 Images)",
                     HAM: "CC BY-NC-SA 4.0"},
    }


def _write(out, records, summary, leakage, skipped, images, status, source, lesion, dx) -> None:
    out = Path(out)
    (out / "eval").mkdir(parents=True, exist_ok=True)
    write_manifest(out / "manifest.csv", records)
    _write_csv(out / "leakage.csv", LEAKAGE_COLUMNS, leakage)
    _write_csv(out / "skipped.csv", SKIPPED_COLUMNS, [vars(s) for s in skipped])
    write_hashes(out / "hashes.csv", images)
    root = Path(summary["source_root"])
    for split in ("val", "test"):
        # every HAM file of the split's lesions, also those whose melanoma-10k copy is the manifest's
        lesions = {lesion[k] for k, v in status.items() if source[k] == HAM and v == split}
        lesions |= {lesion[k] for k in lesion if status.get(k) == f"removed: copy of a seed {split} image"}
        rows = [dict(path=str(root / k), label=HAM_LABELS[dx[k]], lesion_id=lesion[k], dx=dx[k])
                for k in sorted(lesion) if lesion[k] in lesions and k in status]
        _write_csv(out / "eval" / f"ham_{split}.csv", EVAL_COLUMNS, rows)
    summary["manifest_sha256"] = file_sha256(out / "manifest.csv")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
