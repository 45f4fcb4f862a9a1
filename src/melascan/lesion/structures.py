"""Differential structures: pigment network, dots/globules, streaks, regression, veil.

Classical detectors on the working-size, hair-free CIELAB image and the lesion mask
(all lengths are fractions of the image's shorter side, ``side``; every threshold is in
``LesionConfig``):

* **Dark structures**: the morphological black-hat of L* (closing with a disc of
  ``struct_kernel_frac * side`` minus L*) is large on dark lines and dots narrower
  than the disc and ~0 on flat pigment and on the lesion's own edge. A pixel is a
  *dark structure* when it is ``struct_dark_contrast_l`` L* units darker than that
  closing. In a lesion whose equivalent radius is below
  ``struct_min_lesion_radius_kernels`` disc radii nothing is a dark structure (the
  whole lesion would be), so network, dots and streaks are absent there.
* **Pigment network**: a mesh of dark lines encloses small lighter holes. The
  *holes* are the connected non-dark pieces of the lesion that touch neither the
  lesion's outline nor each other, and are between 2 px and ``network_max_hole_frac``
  of the side squared. ``network_fraction`` = share of the lesion covered by holes and
  the lines around them (the overlay). Present when it reaches
  ``network_min_fraction``.
* **Dots / globules**: compact dark components (area 2 px .. ``dots_max_area_frac``
  side squared, filling at least 35 % of their bounding box, at most 3:1 long) that
  are not part of the mesh and at least ``dots_min_contrast_l`` darker than their
  surroundings. ``dots_count`` = how many; present at ``dots_min_count``.
* **Streaks**: dark structures in a band around the outline (``streak_band_frac`` of
  the lesion's equivalent radius, both sides) whose line direction (Hessian of L*) is
  radial within 22.5 degrees. ``streak_radial_excess`` = (radial - tangential dark
  band pixels) / band pixels; present at ``streak_min_excess``.
* **Blue-whitish veil**: grayish-blue pixels (b* at least ``veil_min_b_drop`` below
  the skin's, chroma below ``veil_max_chroma``) darker than the skin but not black
  (L* between ``veil_min_l`` and L_skin - ``veil_min_darkening``), after a 3x3
  opening that keeps confluent areas only. ``veil_fraction`` = their share of the lesion; present at
  ``veil_min_fraction``.
* **Regression structures**: whitish scar-like areas (L* within
  ``regression_white_max_darkening`` of the skin, chroma ``regression_white_min_chroma_drop``
  below it) plus the blue-gray areas of the colour map (``melascan.lesion.colors``:
  peppering) that are not veil. ``regression_fraction`` = their share; present at
  ``regression_min_fraction``.

Typical or atypical (pigment network, dots/globules) is a small logistic model
(``STRUCTURE_MODEL_PATH``) on the structure's irregularity features and the lesion's
heterogeneity (``LESION_CONTEXT``); a present structure is atypical when the model's
probability reaches 0.5.

The presence thresholds marked PH2 in ``LesionConfig`` and the logistic models are
what the fitting procedure of ``benchmarks/ph2_validation.py`` (``--write-model``)
gives on all 100 PH2 images; docs/lesion.md reports that procedure's 5-fold
cross-validated agreement with the experts, never the fit on all images.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.preprocessing import disc

#: The five structures reported, in the order of ``lesion.structures``.
STRUCTURE_NAMES = ("pigment_network", "dots_globules", "streaks", "regression", "blue_whitish_veil")
#: Values of the two three-way structures.
PATTERN_LEVELS = ("absent", "typical", "atypical")
#: Logistic models for typical vs atypical (JSON, shipped in the package).
STRUCTURE_MODEL_PATH = Path(__file__).with_name("structure_model.json")


@dataclass
class Structures:
    """The differential structures found in one lesion.

    ``pigment_network`` / ``dots_globules``: ``absent``, ``typical`` or ``atypical``;
    the others are booleans. ``scores``: the presence measurement of each structure
    (units in the names); ``atypia``: the typical/atypical model's probability for the
    two patterns (``None`` when the structure is absent); ``features``: every measured
    number (for validation). ``maps``: working-size bool masks of where each
    structure was found (for the overlay; not serialised).
    """

    pigment_network: str
    dots_globules: str
    streaks: bool
    regression: bool
    blue_whitish_veil: bool
    scores: dict[str, float]
    atypia: dict[str, float | None]
    features: dict[str, float]
    maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def decisions(self) -> dict:
        """``{"pigment_network": "absent|typical|atypical", ..., "blue_whitish_veil": bool}``."""
        return {name: getattr(self, name) for name in STRUCTURE_NAMES}

    def present(self) -> list[str]:
        """Names of the structures found."""
        return [n for n in STRUCTURE_NAMES if getattr(self, n) not in (False, "absent")]

    @property
    def stolz_d(self) -> int:
        """Stolz's D (1-5): network, structureless areas (regression or veil), streaks,
        dots, globules -- dots and globules are one PH2 label, counted once. At least 1."""
        count = (
            int(self.pigment_network != "absent")
            + int(self.dots_globules != "absent")
            + int(self.streaks)
            + int(self.regression or self.blue_whitish_veil)
        )
        return max(1, count)

    @property
    def seven_point(self) -> int:
        """Argenziano's 7-point checklist score from the measured criteria: atypical
        network 2, blue-whitish veil 2, streaks (irregular) 1, irregular dots/globules 1,
        regression 1. Atypical vascular pattern and irregular blotches are not measured
        (0). Suspicious at ``SEVEN_POINT_CUTOFF``."""
        return (
            2 * int(self.pigment_network == "atypical")
            + 2 * int(self.blue_whitish_veil)
            + int(self.streaks)
            + int(self.dots_globules == "atypical")
            + int(self.regression)
        )


#: The usual 7-point cut-off: a score of 3 or more is suspicious of melanoma.
SEVEN_POINT_CUTOFF = 3


# --- measurement ----------------------------------------------------------------------


def structure_kernel_radius_px(shape: tuple[int, ...], config: LesionConfig = DEFAULT_CONFIG) -> float:
    """Radius of the black-hat disc: ``struct_kernel_frac`` of the shorter side, >= 1.5 px."""
    return max(1.5, config.struct_kernel_frac * min(shape[:2]))


def dark_structure_map(lightness: np.ndarray, config: LesionConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Black-hat of L* (float32, L* units): how much darker each pixel is than the
    morphological closing with a disc of ``structure_kernel_radius_px``."""
    return cv2.morphologyEx(lightness, cv2.MORPH_BLACKHAT, disc(structure_kernel_radius_px(lightness.shape, config)))


def polar_angle(shape: tuple[int, int], cx: float, cy: float) -> np.ndarray:
    """Angle (radians, -pi..pi) of every pixel seen from ``(cx, cy)``: the radial direction."""
    yy = np.arange(shape[0], dtype=np.float32)[:, None] - np.float32(cy)
    xx = np.arange(shape[1], dtype=np.float32)[None, :] - np.float32(cx)
    return np.arctan2(yy, xx)


def sector_index(angle: np.ndarray, sectors: int = 8) -> np.ndarray:
    """Which of ``sectors`` equal angular sectors each pixel of ``polar_angle`` falls in."""
    return ((angle + np.float32(math.pi)) * np.float32(sectors / (2 * math.pi))).astype(np.int32) % sectors


def _cv(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    if values.size < 2 or values.mean() <= 0:
        return 0.0
    return float(values.std() / values.mean())


def network_features(dark: np.ndarray, interior: np.ndarray, blackhat: np.ndarray, sectors: np.ndarray,
                     config: LesionConfig) -> tuple[dict[str, float], np.ndarray]:
    """Mesh holes enclosed by dark lines: ``(features, mesh_map)``."""
    side = min(dark.shape)
    lesion_px = max(int(interior.sum()), 1)
    open_px = (interior & ~dark).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(open_px, connectivity=4)
    # pieces touching the outline are not enclosed
    rim = interior & ~(cv2.erode(interior.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    touching = np.zeros(n, bool)
    touching[np.unique(labels[rim])] = True
    area = stats[:, cv2.CC_STAT_AREA]
    max_hole = (config.network_max_hole_frac * side) ** 2
    hole = (~touching) & (area >= 2) & (area <= max_hole)
    hole[0] = False
    holes = hole[labels]
    mesh = (cv2.dilate(holes.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & interior
    hole_areas = area[hole].astype(float)
    mesh_px = int(mesh.sum())
    per_sector = np.bincount(sectors[mesh], minlength=8) / np.maximum(np.bincount(sectors[interior], minlength=8), 1)
    lines = mesh & dark
    features = {
        "network_fraction": mesh_px / lesion_px,
        "network_holes_per_1000px": 1000.0 * hole_areas.size / lesion_px,
        "network_hole_area_cv": _cv(hole_areas),
        "network_hole_mean_px": float(hole_areas.mean()) if hole_areas.size else 0.0,
        "network_line_share": float(lines.sum()) / max(mesh_px, 1),
        "network_line_contrast_l": float(blackhat[lines].mean()) if lines.any() else 0.0,
        "network_line_contrast_cv": _cv(blackhat[lines]) if lines.any() else 0.0,
        "network_sector_cv": _cv(per_sector),
    }
    return features, mesh


def dots_features(dark: np.ndarray, interior: np.ndarray, mesh: np.ndarray, blackhat: np.ndarray,
                  centroid: tuple[float, float], eq_radius: float, config: LesionConfig,
                  sectors: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Compact dark blobs that are not part of the mesh: ``(features, dots_map)``."""
    side = min(dark.shape)
    lesion_px = max(int(interior.sum()), 1)
    candidate = ((blackhat > config.dots_min_contrast_l) & dark & interior & ~mesh).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA].astype(float)
    bw, bh = stats[1:, cv2.CC_STAT_WIDTH].astype(float), stats[1:, cv2.CC_STAT_HEIGHT].astype(float)
    keep = (
        (area >= 2)
        & (area <= (config.dots_max_area_frac * side) ** 2)
        & (area >= 0.35 * bw * bh)
        & (np.maximum(bw, bh) <= 3 * np.minimum(bw, bh))
    )
    ids = np.flatnonzero(keep) + 1
    lut = np.zeros(n, bool)
    lut[ids] = True
    dots = lut[labels]
    count = int(ids.size)
    features = {"dots_per_1000px": 1000.0 * count / lesion_px, "dots_count": float(count)}
    if count:
        cx, cy = centroid
        pts = cents[ids]
        r = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) / max(eq_radius, 1.0)
        offset = math.hypot(pts[:, 0].mean() - cx, pts[:, 1].mean() - cy) / max(eq_radius, 1.0)
        per_sector = np.bincount(sectors[dots], minlength=8)
        sums = np.bincount(labels.ravel(), weights=blackhat.ravel(), minlength=n)
        contrast = sums[ids] / stats[ids, cv2.CC_STAT_AREA]  # mean black-hat of each dot
        features |= {
            "dots_area_cv": _cv(area[keep]),
            "dots_offset": float(offset),
            "dots_peripheral_share": float((r > 0.7).mean()),
            "dots_sector_share": float((per_sector > 0).mean()),
            "dots_contrast_l": float(contrast.mean()),
        }
    else:
        features |= {"dots_area_cv": 0.0, "dots_offset": 0.0, "dots_peripheral_share": 0.0,
                     "dots_sector_share": 0.0, "dots_contrast_l": 0.0}
    return features, dots


def streak_features(lightness: np.ndarray, dark_map: np.ndarray, mask: np.ndarray, fov: np.ndarray,
                    radial: np.ndarray, eq_radius: float, config: LesionConfig,
                    sectors: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Radially oriented dark lines across the outline: ``(features, streaks_map)``."""
    m8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 3)
    width = max(2.0, config.streak_band_frac * eq_radius)
    band = ((inside > 0) & (inside <= width)) | ((outside > 0) & (outside <= width))
    band &= fov
    smooth = cv2.GaussianBlur(lightness, (0, 0), 1.0)
    hxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
    hyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
    hxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
    dark = dark_map & band
    ys, xs = np.nonzero(dark)
    # across a dark line L* curves upwards: the larger eigenvalue's direction is across it
    across = 0.5 * np.arctan2(2 * hxy[ys, xs], hxx[ys, xs] - hyy[ys, xs])
    # cos(2 * (line direction - radial)); line direction = across + 90 degrees
    align = -np.cos(2 * (across - radial[ys, xs]))
    limit = math.cos(math.radians(45))  # |line direction - radial| < 22.5 degrees
    radial_px = np.zeros(dark.shape, bool)
    radial_px[ys[align > limit], xs[align > limit]] = True
    tangential_px = np.zeros(dark.shape, bool)
    tangential_px[ys[align < -limit], xs[align < -limit]] = True
    band_px = max(int(band.sum()), 1)
    excess = (int(radial_px.sum()) - int(tangential_px.sum())) / band_px
    per_sector = np.bincount(sectors[radial_px], minlength=8) / np.maximum(np.bincount(sectors[band], minlength=8), 1)
    features = {
        "streak_radial_excess": float(excess),
        "streak_radial_share": float(radial_px.sum()) / max(int(dark.sum()), 1),
        "streak_dark_band_share": float(dark.sum()) / band_px,
        "streak_sector_max": float(per_sector.max()),
    }
    return features, radial_px


def color_region_features(lab: np.ndarray, lesion: np.ndarray, skin_lab: np.ndarray,
                          config: LesionConfig) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Blue-whitish veil and regression (white scar-like) areas: ``(features, maps)``."""
    L, a, b = lab[:, :, 0], lab[:, :, 1], lab[:, :, 2]
    chroma = np.hypot(a, b)
    skin_l, skin_b = float(skin_lab[0]), float(skin_lab[2])
    skin_chroma = float(math.hypot(skin_lab[1], skin_lab[2]))
    c = config
    square = np.ones((3, 3), np.uint8)
    veil = (
        lesion
        & (b < skin_b - c.veil_min_b_drop)
        & (chroma < c.veil_max_chroma)
        & (L > c.veil_min_l)
        & (L < skin_l - c.veil_min_darkening)
    )
    veil = cv2.morphologyEx(veil.astype(np.uint8), cv2.MORPH_OPEN, square) > 0  # confluent areas only
    white = lesion & (L > skin_l - c.regression_white_max_darkening) & (chroma < skin_chroma - c.regression_white_min_chroma_drop)
    n = max(int(lesion.sum()), 1)
    features = {"veil_fraction": float(veil.sum()) / n, "regression_white_fraction": float(white.sum()) / n}
    return features, {"blue_whitish_veil": veil, "regression": white}


def structure_features(lab: np.ndarray, mask: np.ndarray, skin_lab, fov: np.ndarray,
                       hair: np.ndarray | None = None, context: dict[str, float] | None = None,
                       config: LesionConfig = DEFAULT_CONFIG,
                       blue_gray: np.ndarray | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Every detector's measurements and maps for one lesion (working size).

    ``lab``: HxWx3 float32 CIELAB (hair removed); ``mask``: the lesion; ``skin_lab``:
    the surrounding skin's CIELAB; ``fov``: field of view; ``hair``: pixels to ignore;
    ``context``: lesion-level measurements the decisions also use (``LESION_CONTEXT``;
    missing ones count as 0); ``blue_gray``: the colour map's blue-gray pixels, shown
    with regression's white areas in its map (their share comes from ``context``).
    """
    if not mask.any():
        raise ValueError("structure_features needs a non-empty lesion mask")
    hair = np.zeros(mask.shape, bool) if hair is None else hair
    lightness = np.ascontiguousarray(lab[:, :, 0])
    blackhat = dark_structure_map(lightness, config)
    dark = (blackhat > config.struct_dark_contrast_l) & ~hair
    interior = (cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~hair
    if not interior.any():
        interior = mask & ~hair if (mask & ~hair).any() else mask
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    centroid = (m["m10"] / m["m00"], m["m01"] / m["m00"])
    eq_radius = math.sqrt(m["m00"] / math.pi)
    if eq_radius < config.struct_min_lesion_radius_kernels * structure_kernel_radius_px(mask.shape, config):
        dark[:] = False  # a lesion hardly wider than the black-hat disc is all "dark line": no texture to read
    radial = polar_angle(mask.shape, *centroid)
    sectors = sector_index(radial)
    net, mesh = network_features(dark, interior, blackhat, sectors, config)
    dots, dots_map = dots_features(dark, interior, mesh, blackhat, centroid, eq_radius, config, sectors)
    streaks, streak_map = streak_features(lightness, dark, mask, fov & ~hair, radial, eq_radius, config, sectors)
    regions, region_maps = color_region_features(lab, mask & ~hair, skin_lab, config)
    context = context or {}
    features = net | dots | streaks | regions | {k: float(context.get(k, 0.0)) for k in LESION_CONTEXT}
    # regression: whitish scar-like areas plus the blue-gray (peppering) areas of the colour map
    features["regression_fraction"] = features["regression_white_fraction"] + features["lesion_blue_gray_fraction"]
    maps = {"pigment_network": mesh, "dots_globules": dots_map, "streaks": streak_map} | region_maps
    if blue_gray is not None:
        maps["regression"] = maps["regression"] | (blue_gray & mask)
    return {k: round(float(v), 5) for k, v in features.items()}, maps


#: Lesion-level measurements passed in by ``analyze_lesion`` (asymmetry, colours): the
#: typical/atypical models use them because, at the working size, the structures' own
#: geometry separated typical from atypical poorly on PH2 (docs/lesion.md).
LESION_CONTEXT = (
    "lesion_shape_asymmetry",  # max over the two axes of the folded non-overlap (0-1)
    "lesion_color_asymmetry_de",  # max over the two axes of the mirrored Delta E
    "lesion_colors",  # Stolz's C
    "lesion_blue_gray_fraction",  # share of blue-gray pixels (colour map)
    "lesion_white_fraction",  # share of white pixels (colour map)
)


# --- decisions --------------------------------------------------------------------------


@lru_cache(maxsize=4)
def load_structure_model(path: str | None = None) -> dict:
    """The typical/atypical logistic models: ``{"pigment_network": {"features": [...],
    "mean": [...], "scale": [...], "coef": [...], "intercept": x}, "dots_globules": ...}``."""
    return json.loads(Path(path or STRUCTURE_MODEL_PATH).read_text())


def atypia_probability(features: dict[str, float], model: dict) -> float:
    """Logistic probability that a present pattern is atypical."""
    x = np.array([features[name] for name in model["features"]], float)
    z = (x - np.asarray(model["mean"])) / np.asarray(model["scale"])
    logit = float(z @ np.asarray(model["coef"]) + model["intercept"])
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


#: presence measurement of each structure and its threshold's name in ``LesionConfig``
PRESENCE = {
    "pigment_network": ("network_fraction", "network_min_fraction"),
    "dots_globules": ("dots_count", "dots_min_count"),
    "streaks": ("streak_radial_excess", "streak_min_excess"),
    "regression": ("regression_fraction", "regression_min_fraction"),
    "blue_whitish_veil": ("veil_fraction", "veil_min_fraction"),
}


def decide_structures(features: dict[str, float], config: LesionConfig = DEFAULT_CONFIG,
                      model: dict | None = None) -> tuple[dict, dict[str, float], dict[str, float | None]]:
    """``(decisions, scores, atypia)`` from ``structure_features`` measurements."""
    model = load_structure_model() if model is None else model
    scores = {name: features[key] for name, (key, _) in PRESENCE.items()}
    present = {name: scores[name] >= getattr(config, threshold) for name, (_, threshold) in PRESENCE.items()}
    decisions: dict = {}
    atypia: dict[str, float | None] = {}
    for name in ("pigment_network", "dots_globules"):
        if not present[name]:
            decisions[name], atypia[name] = "absent", None
            continue
        p = atypia_probability(features, model[name])
        atypia[name] = round(p, 4)
        decisions[name] = "atypical" if p >= 0.5 else "typical"
    for name in ("streaks", "regression", "blue_whitish_veil"):
        decisions[name] = bool(present[name])
    return decisions, scores, atypia


def structures(lab: np.ndarray, mask: np.ndarray, skin_lab, fov: np.ndarray,
               hair: np.ndarray | None = None, context: dict[str, float] | None = None,
               config: LesionConfig = DEFAULT_CONFIG, blue_gray: np.ndarray | None = None) -> Structures:
    """Measure and decide every differential structure of one lesion (working size);
    arguments as for ``structure_features``."""
    features, maps = structure_features(lab, mask, skin_lab, fov, hair, context, config, blue_gray)
    decisions, scores, atypia = decide_structures(features, config)
    return Structures(**decisions, scores=scores, atypia=atypia, features=features, maps=maps)
