"""Copy a few test-split images into ``melascan/assets/samples`` for the web app.

    .venv/bin/python -m melascan.data.samples data/seed/manifest.csv src/melascan/assets/samples

picks ``per_class`` seeded-random images of each class from the manifest's test
split (never seen in training or model selection), or the ``--pick`` paths, copies
their original bytes as ``benign_1.jpg`` ... ``malignant_4.jpg`` and writes the
catalogue (``melascan.data.sample_catalogue``) with each file's label and original path.

The shipped samples were hand-picked (``--pick``, listed in docs/data.md) among
seeded-random test images: whole, clearly visible lesions, one hairy image per class.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from melascan.data.manifest import LABELS, read_manifest
from melascan.data.sample_catalogue import write_catalogue
from melascan.errors import DataError


def choose_samples(
    manifest_path: str | Path, per_class: int = 4, seed: int = 42, split: str = "test", pick: list[str] | None = None
) -> list[dict]:
    """``[{"file", "label", "source_path", ...}]``: ``pick`` (paths of the manifest's
    ``split``) or ``per_class`` seeded-random images per class."""
    manifest = read_manifest(manifest_path)
    records = {r.path: r for r in manifest.subset(split)}
    if pick:
        unknown = [p for p in pick if p not in records]
        if unknown:
            raise DataError(f"not in the {split} split of {manifest.path}: {', '.join(unknown)}")
    chosen = []
    for label in LABELS:
        if pick:
            rows = [records[p] for p in pick if records[p].label == label]
        else:
            pool = sorted((r for r in records.values() if r.label == label), key=lambda r: r.path)
            rng = np.random.default_rng(seed)
            rows = [pool[i] for i in sorted(rng.choice(len(pool), size=min(per_class, len(pool)), replace=False))]
        for k, r in enumerate(rows, start=1):
            chosen.append({
                "file": f"{label}_{k}{Path(r.path).suffix.lower()}",
                "label": label,
                "source_path": r.path,
                "manifest_split": split,
                "md5": r.md5,
                "_abs": str(manifest.source_root / r.path),
            })
    return chosen


def export_samples(
    manifest_path: str | Path, out_dir: str | Path, per_class: int = 4, seed: int = 42, pick: list[str] | None = None
) -> list[dict]:
    """Copy the chosen images (original bytes) and write ``samples.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = choose_samples(manifest_path, per_class, seed, pick=pick)
    for s in samples:
        shutil.copyfile(s.pop("_abs"), out / s["file"])
    write_catalogue(out, samples,
                    source="melanoma-10k dataset, test split of the seed manifest (python -m melascan.data.samples)",
                    selection="hand-picked (--pick)" if pick else f"seeded random, seed {seed}")
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pick", nargs="+", default=None, help="exact manifest paths to use instead")
    args = parser.parse_args(argv)
    for s in export_samples(args.manifest, args.out, args.per_class, args.seed, args.pick):
        print(f"{s['file']:<18} <- {s['source_path']}")


if __name__ == "__main__":
    main()
