"""Lesion analysis: hair removal, segmentation, ABCD features, differential structures,
TDS and 7-point score, overlays, quality checks.

Pure functions on numpy arrays (OpenCV, scikit-image, SciPy); no PyTorch. See
docs/lesion.md for the methods, the thresholds and their validation on PH2.

    a = analyze_lesion(rgb, mm_per_px=None)   # -> LesionAnalysis
    a.mask, a.to_dict()
    make_overlays(rgb, a)                     # -> {"contour", "axes", "colors", "structures"} RGB images
    a.structures.decisions(), a.structures.seven_point, a.tds
    assess_quality(rgb)                       # -> ["blurry", ...]

The front end every step starts from (shrink, field of view, hair removal, Lab):

    work = prepare_work(rgb)                  # -> WorkImage
    seg = segmentation.segment(work)          # working size; to_input_size(seg, work)
"""

from melascan.lesion.analysis import LesionAnalysis, analyze_lesion
from melascan.lesion.colors import COLOR_NAMES, COLOR_PALETTE
from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.overlays import make_overlays
from melascan.lesion.preprocessing import WorkImage, prepare_work, remove_hair
from melascan.lesion.quality import QUALITY_CODES, assess_quality
from melascan.lesion.segmentation import Segmentation, segment_lesion
from melascan.lesion.structures import SEVEN_POINT_CUTOFF, STRUCTURE_NAMES, Structures

__all__ = [
    "COLOR_NAMES",
    "COLOR_PALETTE",
    "DEFAULT_CONFIG",
    "QUALITY_CODES",
    "SEVEN_POINT_CUTOFF",
    "STRUCTURE_NAMES",
    "LesionAnalysis",
    "LesionConfig",
    "Segmentation",
    "Structures",
    "WorkImage",
    "analyze_lesion",
    "assess_quality",
    "make_overlays",
    "prepare_work",
    "remove_hair",
    "segment_lesion",
]
