"""Lesion analysis: hair removal, segmentation, ABCD features, TDS, overlays, quality checks.

Pure functions on numpy arrays (OpenCV, scikit-image, SciPy); no PyTorch. See
docs/lesion.md for the methods, the thresholds and their validation on PH2.

    a = analyze_lesion(rgb, mm_per_px=None)   # -> LesionAnalysis
    a.mask, a.to_dict()
    make_overlays(rgb, a)                     # -> {"contour", "axes", "colors"} RGB images
    assess_quality(rgb)                       # -> ["blurry", ...]
"""

from melascan.lesion.analysis import LesionAnalysis, analyze_lesion
from melascan.lesion.colors import COLOR_NAMES, COLOR_PALETTE
from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.overlays import make_overlays
from melascan.lesion.preprocessing import remove_hair
from melascan.lesion.quality import QUALITY_CODES, assess_quality
from melascan.lesion.segmentation import Segmentation, segment_lesion

__all__ = [
    "COLOR_NAMES",
    "COLOR_PALETTE",
    "DEFAULT_CONFIG",
    "QUALITY_CODES",
    "LesionAnalysis",
    "LesionConfig",
    "Segmentation",
    "analyze_lesion",
    "assess_quality",
    "make_overlays",
    "remove_hair",
    "segment_lesion",
]
