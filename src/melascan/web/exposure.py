"""Under- and overexposure as the web app judges it.

``melascan.lesion.quality`` reports ``too_dark`` below a mean brightness of 45 and ``too_bright``
above half the field of view saturated; the darkest of the 900 real dermoscopy images it was
calibrated on had a mean brightness of 69 and the most saturated 25 % (its docstring). A photo
outside what real images showed is one the model was never checked on, so the app warns from
those measured limits on: the same check (``assess_quality``), with the web's two thresholds.
"""

from __future__ import annotations

import numpy as np

from melascan.lesion import assess_quality
from melascan.lesion.quality import TOO_BRIGHT, TOO_DARK, QualityThresholds

#: The quality check with the web's exposure limits (the measured range of real images).
WEB_EXPOSURE = QualityThresholds(dark_mean=69.0, bright_saturated_fraction=0.25)
EXPOSURE_CODES = (TOO_DARK, TOO_BRIGHT)


def exposure_warnings(rgb: np.ndarray, reported: list[str], segmentation=None) -> list[str]:
    """``too_dark`` / ``too_bright`` for ``rgb`` under the web's limits, unless ``reported``
    (the lesion analysis's own codes) already has them. Pass the analysis's ``segmentation`` to
    skip segmenting again."""
    codes = assess_quality(rgb, segmentation, thresholds=WEB_EXPOSURE)
    return [c for c in EXPOSURE_CODES if c in codes and c not in reported]
