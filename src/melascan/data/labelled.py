"""Labelled image lists from CSV files: ``path,label`` and the public data sets' own files.

``read_labelled_csv`` reads any CSV with one image column and one diagnosis column, so
these all work as they are:

* ``path,label`` (``benign``/``malignant`` or ``0``/``1``), e.g. ``prepare --mix``'s
  ``eval/ham_test.csv``;
* PH2's ``labels.csv`` (``image``, ``diagnosis``: ``melanoma``, ``common_nevus``,
  ``atypical_nevus``), images found in ``images/IMD002.png`` beside it;
* HAM10000's ``HAM10000_metadata.csv`` (``image_id``, ``dx``), images in ``images/*.jpg``.

Diagnoses outside the benign/melanoma task (basal cell carcinoma, actinic keratosis) are
skipped with a reason, never guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from melascan.errors import DataError

PATH_COLUMNS = ("path", "image", "image_id", "file", "filename")
LABEL_COLUMNS = ("label", "diagnosis", "dx", "class")
IMAGE_SUFFIXES = ("", ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

#: Diagnosis (lower case) -> binary label; None = not part of the benign/melanoma task.
DIAGNOSES: dict[str, str | None] = {
    "benign": "benign", "0": "benign", "malignant": "malignant", "1": "malignant",
    "melanoma": "malignant", "mel": "malignant",
    "nevus": "benign", "nv": "benign", "common_nevus": "benign", "atypical_nevus": "benign",
    "bkl": "benign", "df": "benign", "vasc": "benign",
    "bcc": None, "akiec": None,
}


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str  # benign | malignant
    row: dict  # the CSV row, for extra columns (lesion_id, dx...)


def _column(fields: list[str], names: tuple[str, ...], what: str, csv_path: Path) -> str:
    lower = {f.lower(): f for f in fields}
    for name in names:
        if name in lower:
            return lower[name]
    raise DataError(f"{csv_path}: no {what} column (expected one of {', '.join(names)}; found {', '.join(fields)})")


def resolve_image(name: str, folders: list[Path]) -> Path | None:
    """The file ``name`` (with or without suffix) in the first folder that has it."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def read_labelled_csv(csv_path: str | Path, images_dir: str | Path | None = None
                      ) -> tuple[list[LabelledImage], list[dict]]:
    """``(images, skipped)``: every row of ``csv_path`` with a usable label and an existing file.

    Relative paths are looked up in ``images_dir`` (default: the CSV's folder), then in its
    ``images/`` subfolder. ``skipped`` rows are ``{"path", "reason"}``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"CSV file not found: {csv_path}")
    base = Path(images_dir) if images_dir is not None else csv_path.parent
    folders = [base, base / "images"]
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        path_col = _column(fields, PATH_COLUMNS, "image path", csv_path)
        label_col = _column(fields, LABEL_COLUMNS, "label/diagnosis", csv_path)
        rows = list(reader)
    images, skipped = [], []
    for row in rows:
        name, diagnosis = (row.get(path_col) or "").strip(), (row.get(label_col) or "").strip().lower()
        if diagnosis not in DIAGNOSES:
            skipped.append({"path": name, "reason": f"unknown label {diagnosis!r}"})
            continue
        if DIAGNOSES[diagnosis] is None:
            skipped.append({"path": name, "reason": f"diagnosis {diagnosis!r} is outside the benign/melanoma task"})
            continue
        path = resolve_image(name, folders)
        if path is None:
            skipped.append({"path": name, "reason": "file not found"})
            continue
        images.append(LabelledImage(path, DIAGNOSES[diagnosis], row))
    if not images:
        raise DataError(f"{csv_path}: no usable labelled image ({len(skipped)} rows skipped)")
    return images, skipped
