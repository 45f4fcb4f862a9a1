"""The sample dermoscopy images the app offers (``melascan/assets/samples``, or ``SAMPLES_DIR``).

Their catalogue format belongs to ``melascan.data.sample_catalogue``; this module only turns its
entries into what the pages need (a URL-safe slug, the label, the entry's other fields).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from flask import current_app

from melascan.data.sample_catalogue import read_catalogue
from melascan.errors import DataError

_SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Sample:
    slug: str  # URL-safe id, from the file name
    path: Path
    label: str  # benign | malignant
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def filename(self) -> str:
        return self.path.name


def samples_dir() -> Path:
    configured = current_app.config.get("SAMPLES_DIR")
    return Path(configured) if configured else Path(str(resources.files("melascan").joinpath("assets", "samples")))


def list_samples() -> list[Sample]:
    """The samples whose image file exists, in the catalogue's order (empty if none)."""
    try:
        entries = read_catalogue(samples_dir())
    except DataError as exc:
        current_app.logger.warning("%s", exc)
        return []
    return [Sample(_SLUG_RE.sub("-", e.path.stem).strip("-") or "sample", e.path, e.label,
                   {k: v for k, v in e.fields.items() if isinstance(v, (str, int, float))})
            for e in entries]


def get_sample(slug: str) -> Sample | None:
    return next((s for s in list_samples() if s.slug == slug), None)
