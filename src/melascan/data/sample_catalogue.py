"""The sample catalogue: the one owner of the format of ``melascan/assets/samples``.

A folder of images with ``samples.json``::

    {"source": "...", "selection": "...",
     "samples": [{"file": "benign_1.jpg", "label": "benign", ...more fields}, ...]}

``file`` is a name inside the folder, ``label`` one of ``LABELS``; further fields (``source_path``,
``manifest_split``, ``md5``, ``source`` ...) are kept as they are. ``melascan.data.samples`` writes
catalogues, the web app (``melascan.web.samples``) reads them. Torch-free, standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melascan.errors import DataError

CATALOGUE = "samples.json"
LABELS = ("benign", "malignant")


@dataclass(frozen=True)
class CatalogueEntry:
    path: Path  # the image, inside the catalogue's folder
    label: str  # one of LABELS
    fields: dict[str, Any] = field(default_factory=dict, compare=False)  # every field of the entry


def write_catalogue(folder: str | Path, samples: list[dict[str, Any]], source: str, selection: str) -> Path:
    """Write ``<folder>/samples.json`` for ``samples`` (dicts with at least ``file`` and ``label``)."""
    for s in samples:
        if not isinstance(s.get("file"), str) or s.get("label") not in LABELS:
            raise DataError(f"a sample needs a file name and a label in {LABELS}: {s!r}")
    path = Path(folder) / CATALOGUE
    meta = {"source": source, "selection": selection, "samples": samples}
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def read_catalogue(folder: str | Path) -> list[CatalogueEntry]:
    """The entries of ``<folder>/samples.json`` whose image exists inside the folder, in order;
    empty when there is no catalogue. ``DataError`` if it exists but cannot be read."""
    folder = Path(folder).resolve()
    path = folder / CATALOGUE
    if not path.is_file():
        return []
    try:
        samples = json.loads(path.read_text(encoding="utf-8"))["samples"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a sample catalogue ({exc})") from None
    entries = []
    for s in samples if isinstance(samples, list) else []:
        if not isinstance(s, dict) or not isinstance(s.get("file"), str) or s.get("label") not in LABELS:
            continue
        image = (folder / s["file"]).resolve()
        if folder in image.parents and image.is_file():  # no names that leave the folder
            entries.append(CatalogueEntry(image, s["label"], dict(s)))
    return entries
