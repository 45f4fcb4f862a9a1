"""Under- and overexposure warnings for the web app.

``melascan.lesion.quality`` blocks an image (``too_dark`` / ``too_bright``) only when it is far
outside what real dermoscopy looks like; the app also *warns* (retake with more / less light)
from the edge of the measured range on: the same check with ``LesionConfig``'s exposure-warning
limits (``melascan.lesion.config.exposure_warning_config``).
"""

from __future__ import annotations

import numpy as np

from melascan.lesion import assess_quality
from melascan.lesion.config import exposure_warning_config
from melascan.lesion.quality import TOO_BRIGHT, TOO_DARK

WARNING_CONFIG = exposure_warning_config()
EXPOSURE_CODES = (TOO_DARK, TOO_BRIGHT)


def exposure_warnings(rgb: np.ndarray, reported: list[str], segmentation=None) -> list[str]:
    """``too_dark`` / ``too_bright`` for ``rgb`` under the web's limits, unless ``reported``
    (the lesion analysis's own codes) already has them. Pass the analysis's ``segmentation`` to
    skip segmenting again."""
    codes = assess_quality(rgb, segmentation, WARNING_CONFIG)
    return [c for c in EXPOSURE_CODES if c in codes and c not in reported]
