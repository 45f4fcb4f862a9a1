"""``analyze_lesion``: the whole lesion analysis of one dermoscopy image.

Steps (all at the working size, ``LesionConfig.work_side_px``, except the diameter,
which is measured on the mask mapped back to the input size):

1. the front end, ``prepare_work``: shrink, find the field of view (dark vignette),
   remove hair (DullRazor), convert to CIELAB;
2. segment (``melascan.lesion.segmentation.segment``), map the mask to the input size
   (``to_input_size``) and run the quality checks;
3. if a lesion was found: A (asymmetry), B (border), C (colours), D (diameter), the
   differential structures (``melascan.lesion.structures``), Stolz's TDS with the
   measured D and the 7-point checklist score. Without a lesion every feature is
   ``None``: nothing is guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from melascan.lesion.asymmetry import Asymmetry, PrincipalAxes, asymmetry
from melascan.lesion.border import Border, border
from melascan.lesion.colors import COLOR_NAMES, Colors, colors
from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.diameter import Diameter, diameter
from melascan.lesion.preprocessing import WorkImage, check_rgb, prepare_work
from melascan.lesion.quality import quality_codes
from melascan.lesion.structures import SEVEN_POINT_CUTOFF, Structures, structures
from melascan.lesion.segmentation import Segmentation, segment, skin_region, to_input_size
from melascan.lesion.tds import TDS, tds
from melascan.serialization import json_safe


@dataclass
class LesionAnalysis:
    """Everything measured on one image. ``mask`` is HxW bool at the input size.

    ``color_map`` (working size, uint8: 0 none, 1-6 ``COLOR_NAMES``) and ``scale``
    (input px per working px) are kept for the overlays.
    """

    mask: np.ndarray
    segmentation: Segmentation
    quality: list[str]
    image_size: tuple[int, int]  # (height, width) of the input
    mm_per_px: float | None = None
    asymmetry: Asymmetry | None = None
    border: Border | None = None
    colors: Colors | None = None
    diameter: Diameter | None = None
    tds: TDS | None = None
    structures: Structures | None = None
    axes: PrincipalAxes | None = None  # in input pixels
    color_map: np.ndarray | None = field(default=None, repr=False)
    scale: float = 1.0
    work: WorkImage | None = field(default=None, repr=False, compare=False)  # the front end's image

    @property
    def found(self) -> bool:
        return self.segmentation.found

    def to_dict(self) -> dict:
        """A JSON-safe summary (no arrays; NaN becomes ``None``)."""
        a, b, c, d, t, s = self.asymmetry, self.border, self.colors, self.diameter, self.tds, self.structures
        out = {
            "lesion_found": self.found,
            "asymmetry": a.score if a else None,
            "asymmetry_axes": (
                {
                    "shape_major": a.shape_major,
                    "shape_minor": a.shape_minor,
                    "color_major_de": a.color_major_de,
                    "color_minor_de": a.color_minor_de,
                    "asymmetric_major": a.asymmetric_major,
                    "asymmetric_minor": a.asymmetric_minor,
                }
                if a
                else None
            ),
            "border": b.score if b else None,
            "border_octant_slopes": list(b.octant_slopes) if b else None,
            "compactness": b.compactness if b else None,
            "fractal_dimension": b.fractal_dimension if b else None,
            "colors": list(c.present) if c else [],
            "color_fractions": dict(c.fractions) if c else None,
            "skin_lab": list(c.skin_lab) if c else None,
            "diameter_px": d.diameter_px if d else None,
            "diameter_mm": d.diameter_mm if d else None,
            "exceeds_6mm": d.exceeds_6mm if d else None,
            "mm_per_px": self.mm_per_px,
            "tds": t.value if t else None,
            "tds_band": t.band if t else None,
            "tds_inputs": t.inputs() if t else None,
            "structures": s.decisions() if s else None,
            "structure_scores": dict(s.scores) if s else None,
            "structure_atypia": dict(s.atypia) if s else None,
            "seven_point": s.seven_point if s else None,
            "seven_point_suspicious": (s.seven_point >= SEVEN_POINT_CUTOFF) if s else None,
            "axes": (
                {
                    "center_xy": [round(self.axes.cx, 2), round(self.axes.cy, 2)],
                    "angle_deg": round(self.axes.angle_deg, 2),
                    "major_length_px": round(self.axes.major_length_px, 2),
                    "minor_length_px": round(self.axes.minor_length_px, 2),
                }
                if self.axes
                else None
            ),
            "area_px": int(self.mask.sum()),
            "quality": list(self.quality),
            "segmentation_flags": list(self.segmentation.flags),
            "segmentation_confidence": self.segmentation.confidence,
            "segmentation_channel": self.segmentation.channel,
            "contrast_de": self.segmentation.contrast_de,
            "image_size": {"height": self.image_size[0], "width": self.image_size[1]},
        }
        return json_safe(out)


def _scaled_axes(axes: PrincipalAxes, scale: float) -> PrincipalAxes:
    """Axes measured at the working size, in input pixels (pixel centres map as x*s + (s-1)/2)."""
    offset = (scale - 1.0) / 2.0
    return PrincipalAxes(
        axes.cx * scale + offset,
        axes.cy * scale + offset,
        axes.angle_deg,
        axes.major_length_px * scale,
        axes.minor_length_px * scale,
    )


def analyze_lesion(
    rgb: np.ndarray,
    mm_per_px: float | None = None,
    *,
    structures_count: int | None = None,
    config: LesionConfig = DEFAULT_CONFIG,
) -> LesionAnalysis:
    """Analyse the lesion in an ``HxWx3`` ``uint8`` RGB dermoscopy image.

    ``mm_per_px``: the image scale, if known, for ``diameter_mm``/``exceeds_6mm``.
    ``structures_count``: Stolz's D (1-5) if someone counted the differential
    structures; otherwise D is measured (``melascan.lesion.structures``) and
    ``tds_inputs["D_source"]`` is ``"measured"``.
    """
    rgb = check_rgb(rgb)
    if mm_per_px is not None and not (math.isfinite(mm_per_px) and mm_per_px > 0):
        raise ValueError(f"mm_per_px must be a positive number, got {mm_per_px!r}")
    work = prepare_work(rgb, config)
    seg = segment(work, config)  # no_lesion when the view is (nearly) all vignette
    quality = quality_codes(work, seg, config, lab=work.lab)
    full_seg = to_input_size(seg, work)
    scale, fov, hair, lab_clean = work.scale, work.fov, work.hair, work.lab
    result = LesionAnalysis(full_seg.mask, full_seg, quality, rgb.shape[:2], mm_per_px, scale=scale, work=work)
    if not seg.found:
        return result

    mask = seg.mask
    result.asymmetry = asymmetry(mask, lab_clean, config)
    result.axes = _scaled_axes(result.asymmetry.axes, scale)
    result.diameter = diameter(full_seg.contour, mm_per_px)
    result.border = border(
        mask, lab_clean[:, :, 0], seg.contour, result.asymmetry.axes, result.diameter.diameter_px / scale, config
    )
    # colours: inpainting changed only hair pixels, which are left out here
    skin = skin_region(mask, fov, config, hair)
    result.colors, result.color_map = colors(lab_clean, mask & ~hair, skin, config)

    a, fractions = result.asymmetry, result.colors.fractions
    context = {
        "lesion_shape_asymmetry": max(a.shape_major, a.shape_minor),
        "lesion_color_asymmetry_de": max(a.color_major_de, a.color_minor_de),
        "lesion_colors": result.colors.score,
        "lesion_blue_gray_fraction": fractions["blue_gray"],
        "lesion_white_fraction": fractions["white"],
    }
    blue_gray = result.color_map == COLOR_NAMES.index("blue_gray") + 1
    result.structures = structures(lab_clean, mask, result.colors.skin_lab, fov, hair, context, config, blue_gray)
    if structures_count is None:
        d, source = result.structures.stolz_d, "measured"
    else:
        d, source = int(structures_count), "given"
    result.tds = tds(result.asymmetry.score, result.border.score, result.colors.score, d, source)
    return result
