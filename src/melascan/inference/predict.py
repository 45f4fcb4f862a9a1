"""Score image files and folders with a ``Classifier``: the engine of ``melascan predict``.

The CSV is a stable interface (other tools score external sets through it): one row
per image, columns ``CSV_COLUMNS``; ``in_scope`` is ``true``/``false`` (empty for a model
without a scope detector): ``false`` means the image does not look like a dermoscopic
image of a skin lesion and its probability must not be shown to a person; ``familiar`` is
``false`` for an in-scope image unlike the validation images the model's numbers were measured
on (empty without a detector or its cut). A file that cannot be read gets a row with an
empty score and the reason in ``error``; the other files are still scored.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable, Iterable

from melascan.errors import ImageError
from melascan.inference.classifier import Classifier

#: Stable columns of ``melascan predict --csv`` (append new ones at the end only).
CSV_COLUMNS = ("path", "probability", "label", "label_screening", "logit_benign", "logit_malignant", "error",
               "in_scope", "scope_score", "network_probability", "familiar")
#: What the human-readable outputs of ``predict`` and ``analyze`` say for such images.
OUT_OF_SCOPE_NOTE = "OUT OF SCOPE: does not look like a dermoscopic image of a skin lesion; not scored"
UNFAMILIAR_NOTE = "UNFAMILIAR: unlike the images the model's numbers were measured on; a low score does not reassure"


def error_row(path: Path, message: str) -> dict[str, Any]:
    """The row of a file that could not be scored: every column empty but ``path`` and ``error``."""
    return {**dict.fromkeys(CSV_COLUMNS), "path": str(path), "error": message}


def score_files(
    clf: Classifier,
    paths: Iterable[Path],
    *,
    batch_size: int = 16,
    on_error: Callable[[ImageError], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row dict (keys ``CSV_COLUMNS``) per path, in order.

    Unreadable files become error rows (``on_error`` is told); ``progress(n)`` is
    called after each batch of ``n`` files.
    """
    paths = list(paths)
    rows: list[dict[str, Any]] = []
    batch_size = max(1, batch_size)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        slots: list[dict[str, Any] | None] = []
        loaded, loaded_at = [], []
        for path in chunk:
            try:
                loaded.append(clf.load(path))
                loaded_at.append(len(slots))
                slots.append(None)
            except ImageError as exc:
                if on_error:
                    on_error(exc)
                slots.append(error_row(path, str(exc)))
        if loaded:
            for slot, p in zip(loaded_at, clf.predict_rgbs(loaded)):
                slots[slot] = {
                    "path": str(chunk[slot]),
                    "probability": p.probability,
                    "label": p.labels["balanced"],
                    "label_screening": p.labels["screening"],
                    "logit_benign": p.logits[0],
                    "logit_malignant": p.logits[1],
                    "error": None,
                    "in_scope": p.in_scope,
                    "scope_score": p.scope_score,
                    "network_probability": p.network_probability,
                    "familiar": p.familiar,
                }
        rows.extend(slots)  # type: ignore[arg-type]
        if progress:
            progress(len(chunk))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".8g")
    return str(value)


def write_csv(rows: Iterable[dict[str, Any]], out: str | Path) -> Path:
    """Write the rows with ``CSV_COLUMNS`` (empty cells for missing values)."""
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([_cell(row.get(col)) for col in CSV_COLUMNS])
    return out
