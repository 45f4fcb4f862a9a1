"""The sample dermoscopy images shipped in ``melascan/assets/samples`` (with samples.json).

``samples.json`` describes each image; this module reads it tolerantly: a list (or
``{"samples": [...]}``) of objects with at least a file name (``file``, ``filename``,
``path`` or ``name``) and a ``label`` (``benign`` | ``malignant``). Other fields
(``source``, ``title``, ``description``, ``license`` ...) are shown if present.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from flask import current_app

_SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Sample:
    slug: str  # URL-safe id, from the file name
    path: Path
    label: str  # benign | malignant | unknown
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def filename(self) -> str:
        return self.path.name


def samples_dir() -> Path:
    configured = current_app.config.get("SAMPLES_DIR")
    return Path(configured) if configured else Path(str(resources.files("melascan").joinpath("assets", "samples")))


def _file_of(entry: dict) -> str | None:
    for key in ("file", "filename", "path", "image", "name"):
        if isinstance(entry.get(key), str):
            return entry[key]
    return None


def list_samples() -> list[Sample]:
    """The samples whose image file exists, in the catalogue's order (empty if none)."""
    folder = samples_dir()
    catalogue = folder / "samples.json"
    if not catalogue.is_file():
        return []
    try:
        data = json.loads(catalogue.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current_app.logger.warning("unreadable %s", catalogue)
        return []
    entries = data.get("samples", data.get("images", [])) if isinstance(data, dict) else data
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not _file_of(entry):
            continue
        path = (folder / _file_of(entry)).resolve()
        if folder.resolve() not in path.parents or not path.is_file():
            continue
        label = str(entry.get("label", "unknown")).lower()
        label = {"melanoma": "malignant", "1": "malignant", "0": "benign"}.get(label, label)
        slug = _SLUG_RE.sub("-", path.stem).strip("-") or "sample"
        extra = {k: v for k, v in entry.items() if isinstance(v, (str, int, float))}
        found.append(Sample(slug, path, label, extra))
    return found


def get_sample(slug: str) -> Sample | None:
    return next((s for s in list_samples() if s.slug == slug), None)
