"""The image scale a person may enter with an upload, so the diameter is given in millimetres.

Either ``mm_per_px`` (millimetres per pixel of the file as uploaded) or a ruler seen in the photo:
``ruler_mm`` millimetres spanning ``ruler_px`` pixels. All optional; a value that is given but
unusable is refused with a translated message (``RequestError`` ``invalid_scale``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from melascan.web.errors import RequestError

#: Accepted millimetres per pixel: from a 1 mm ruler mark 1000 px long to 1 px per mm.
MM_PER_PX_MIN = 0.001
MM_PER_PX_MAX = 1.0
FIELDS = ("mm_per_px", "ruler_mm", "ruler_px")


def _number(form: Mapping[str, str], field: str) -> float | None:
    """The field as a positive finite number (``,`` accepted as the decimal mark); None if empty."""
    text = (form.get(field) or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RequestError("invalid_scale", key="error.invalid_scale.not_number", field=field) from None
    if not math.isfinite(value) or value <= 0:
        raise RequestError("invalid_scale", key="error.invalid_scale.not_positive", field=field)
    return value


def scale_from_form(form: Mapping[str, str]) -> float | None:
    """Millimetres per pixel from an upload form, or None when no scale was entered."""
    mm_per_px, ruler_mm, ruler_px = (_number(form, f) for f in FIELDS)
    if mm_per_px is not None and (ruler_mm is not None or ruler_px is not None):
        raise RequestError("invalid_scale", key="error.invalid_scale.both")
    if (ruler_mm is None) != (ruler_px is None):
        raise RequestError("invalid_scale", key="error.invalid_scale.ruler_pair")
    if ruler_mm is not None and ruler_px is not None:
        mm_per_px = ruler_mm / ruler_px
    if mm_per_px is not None and not MM_PER_PX_MIN <= mm_per_px <= MM_PER_PX_MAX:
        raise RequestError("invalid_scale", key="error.invalid_scale.range", value=f"{mm_per_px:.4g}",
                           low=MM_PER_PX_MIN, high=f"{MM_PER_PX_MAX:g}")
    return mm_per_px
