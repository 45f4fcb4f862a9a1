"""Under- and overexposure warnings for the web app.

``melascan.lesion.quality`` blocks an image (``too_dark`` / ``too_bright``) only when it is far
outside what real dermoscopy looks like; the app also *warns* (retake with more / less light)
from the edge of the measured range on: the same check with ``LesionConfig``'s exposure-warning
limits (``melascan.lesion.config.exposure_warning_config``).
"""

from __future__ import annotations

from melascan.lesion.analysis import LesionAnalysis
from melascan.lesion.config import exposure_warning_config
from melascan.lesion.quality import exposure_codes

WARNING_CONFIG = exposure_warning_config()


def exposure_warnings(lesion: LesionAnalysis) -> list[str]:
    """``too_dark`` / ``too_bright`` under the warning limits, measured on the image the lesion
    analysis already prepared, unless the analysis's own (blocking) codes have them."""
    return [c for c in exposure_codes(lesion.work, WARNING_CONFIG) if c not in lesion.quality]
