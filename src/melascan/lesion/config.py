"""Every tunable number of the lesion analysis, in one documented object.

``LesionConfig`` is passed to each step (``config=``); ``DEFAULT_CONFIG`` holds the
values used by the CLI, the web app and the PH2 validation in docs/lesion.md. Values
marked *PH2* were chosen on the PH2 data set (see ``benchmarks/ph2_validation.py``,
which also reports a 5-fold cross-validated score for them); the others are fixed
by reasoning about image geometry and are not tuned.

Lengths are given as fractions of the working image's shorter side so that a 300 px
and a 768 px image are treated alike; everything runs at ``work_side_px``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class LesionConfig:
    # --- working resolution -------------------------------------------------------
    #: The image is shrunk (never enlarged) so its shorter side is this many pixels;
    #: masks and diameters are mapped back to the input resolution.
    work_side_px: int = 192

    # --- field of view (dark vignette and corners) ----------------------------------
    #: A pixel is "dark" when its brightness (max of R, G, B) is below this fraction of
    #: the bright skin level (90th percentile of brightness in the central region).
    fov_dark_fraction: float = 0.5
    #: ... or below this absolute brightness (0-255), whatever the skin level.
    fov_dark_abs: int = 40
    #: Dark regions connected to the image border are the vignette unless they reach
    #: this close (fraction of the half diagonal) to the image centre.
    fov_center_keepout: float = 0.45
    #: The vignette is widened by this fraction of the shorter side to swallow its
    #: shaded rim.
    fov_margin_frac: float = 0.03
    #: With less than this fraction of the picture in the field of view there is
    #: nothing to judge: no segmentation (``no_lesion``) and the quality check says
    #: ``too_dark``.
    fov_min_fraction: float = 0.05

    # --- hair removal (DullRazor) ----------------------------------------------------
    #: Black-hat structuring element side, fraction of the shorter side (odd, >= 3 px).
    hair_kernel_frac: float = 0.045
    #: Black-hat response (0-255 gray levels) above which a pixel is hair.
    hair_threshold: int = 20
    #: A hair component must be at least this long (fraction of the shorter side).
    hair_min_length_frac: float = 0.08
    #: ... and thin: area / skeleton length at most this fraction of the shorter side.
    hair_max_width_frac: float = 0.025
    #: A thin component enclosing more network-sized holes (``network_max_hole_frac``)
    #: than this is a pigment network, not hair.
    hair_max_loops: int = 10
    #: cv2.inpaint radius in pixels.
    hair_inpaint_radius_px: int = 3

    # --- segmentation ----------------------------------------------------------------
    #: Gaussian blur sigma before thresholding, fraction of the shorter side.
    seg_blur_frac: float = 0.01
    #: Divide the channel by a fitted skin-lighting surface (tilt + fall-off to the edges).
    seg_shading_correction: bool = True
    #: The Otsu threshold is moved this fraction of the way from the lesion class mean
    #: towards the skin class mean, so the mask reaches the faint rim experts include (PH2).
    seg_threshold_shift: float = 0.3
    #: Morphological opening/closing disc radius, fraction of the shorter side.
    seg_morph_frac: float = 0.02
    #: A mask smaller than this fraction of the field of view is flagged ``too_small``.
    seg_min_area_frac: float = 0.005
    #: Mean CIELAB distance (Delta E 76) between lesion and surrounding skin below which
    #: the image is flagged ``no_lesion`` instead of segmented.
    seg_min_contrast_de: float = 8.0
    #: ``touches_border`` fires when more than this fraction of the contour lies on the
    #: image border or the field-of-view edge.
    seg_border_touch_frac: float = 0.1
    #: Width of the ring of skin just outside the lesion, fraction of the shorter side:
    #: the skin the lesion is compared with (``seg_min_contrast_de``, the confidence)
    #: and the skin colour reference of C and the structures.
    skin_ring_frac: float = 0.05
    #: Refine the Otsu mask with GrabCut (slower and, on PH2, less accurate: docs/lesion.md).
    seg_grabcut: bool = False

    # --- quality checks (melascan.lesion.quality; measured at the working size inside
    # the field of view; calibrated on 900 real dermoscopy images, see docs/lesion.md) ---
    #: ``blurry`` below this variance of the 3x3 Laplacian of the gray image
    #: (gray levels squared, 0-255 scale; the least sharp of the 900 measured 6.1).
    quality_blur_min_laplacian_var: float = 5.0
    #: ``too_dark`` below this mean brightness (max of R, G, B; 0-255).
    quality_dark_max_mean_brightness: float = 45.0
    #: ``too_bright`` above this mean brightness (0-255) ...
    quality_bright_min_mean_brightness: float = 250.0
    #: ... or when more than this fraction of the pixels is saturated ...
    quality_bright_max_saturated_fraction: float = 0.5
    #: ... i.e. has all three channels at or above this level (0-255).
    quality_saturated_level: int = 250
    #: ``not_dermoscopic`` when more than this fraction of the pixels is green ...
    quality_max_green_fraction: float = 0.2
    #: ... (a green pixel: a* below this ...
    quality_green_max_a: float = -12.0
    #: ... and chroma C* above this),
    quality_green_min_chroma: float = 10.0
    #: ... more than this fraction is vivid ...
    quality_max_vivid_fraction: float = 0.4
    #: ... (chroma C* above this),
    quality_vivid_min_chroma: float = 70.0
    #: ... or the mean chroma C* is below this (a grayscale picture, a document).
    quality_min_mean_chroma: float = 1.5
    #: Exposure *warnings* (not blocking; the web app's "retake with more / less light"):
    #: the same ``too_dark`` / ``too_bright`` checks at the edge of what the 900 real images
    #: showed (darkest mean brightness 69, most saturated 25 %), so a photo outside the
    #: range the model was checked on is named. ``exposure_warning_config`` applies them.
    exposure_warn_dark_max_mean_brightness: float = 69.0
    exposure_warn_max_saturated_fraction: float = 0.25

    # --- A: asymmetry -----------------------------------------------------------------
    #: An axis is asymmetric in shape when the non-overlapping area after folding about
    #: it exceeds this fraction of the lesion area (PH2).
    asym_shape_threshold: float = 0.09
    #: ... or asymmetric in colour when a lesion point and its mirror image differ by
    #: more than this mean Delta E 76 (PH2).
    asym_color_threshold_de: float = 9.5
    #: Gaussian blur before comparing mirrored colours, fraction of the shorter side.
    asym_color_blur_frac: float = 0.015

    # --- B: border --------------------------------------------------------------------
    #: An octant has an abrupt cut-off when the steepest change of L* across the border,
    #: in L* units per 1 % of the lesion diameter, exceeds this value (PH2 has no expert
    #: border score: chosen as the value whose B best separates melanoma from nevi).
    border_abrupt_slope: float = 5.0
    #: Half-width of the band around the outline where the steepest change is looked
    #: for, fraction of the lesion's equivalent radius.
    border_band_frac: float = 0.1

    # --- C: colours (rules in melascan.lesion.colors) ------------------------------------
    #: black: darker than this L* ... (PH2)
    color_black_max_l: float = 30.0
    #: ... and less colourful than this chroma C* (PH2)
    color_black_max_chroma: float = 15.0
    #: blue_gray: b* below this (bluish) ... (PH2)
    color_blue_gray_max_b: float = 3.0
    #: ... and at least this much darker (L*) than the skin (PH2)
    color_blue_gray_min_darkening: float = 5.0
    #: white: at most this much darker (L*) than the skin ... (PH2)
    color_white_max_darkening: float = 5.0
    #: ... and at least this much less colourful (C*) than the skin (PH2)
    color_white_min_chroma_drop: float = 5.0
    #: red: hue angle below this (pink-red, not orange-brown) ... (reasoning, not tuned)
    color_red_max_hue_deg: float = 20.0
    #: ... and chroma above this (reasoning, not tuned)
    color_red_min_chroma: float = 20.0
    #: dark_brown: L* below this fraction of the skin's L* (PH2)
    color_dark_brown_max_l_ratio: float = 0.6
    #: light_brown: L* below this fraction of the skin's L* (PH2)
    color_light_brown_max_l_ratio: float = 0.85
    #: A colour is present when it covers at least this fraction of the lesion (PH2).
    color_min_fraction: dict = field(
        default_factory=lambda: {
            "white": 0.001,
            "red": 0.01,
            "light_brown": 0.3,
            "dark_brown": 0.003,
            "blue_gray": 0.003,
            "black": 0.003,
        }
    )

    # --- differential structures (detectors in melascan.lesion.structures) ---------------
    #: Black-hat disc radius for dark lines and dots, fraction of the shorter side.
    struct_kernel_frac: float = 0.02
    #: A pixel is a dark structure when it is this many L* units darker than the
    #: closing of L* (reasoning: about twice the skin's pixel noise).
    struct_dark_contrast_l: float = 4.0
    #: Network, dots and streaks are only looked for in lesions whose equivalent radius
    #: is at least this many black-hat disc radii (a smaller lesion is one dark blob).
    struct_min_lesion_radius_kernels: float = 3.0
    #: Largest network hole, as a fraction of the shorter side (squared for the area).
    network_max_hole_frac: float = 0.08
    #: Pigment network present when its mesh covers this share of the lesion. Not tuned
    #: (every PH2 lesion has a network, so PH2 cannot choose it): 1 %, above what a plain
    #: disc (0) or a dotted lesion (~0.2 %) produce in the synthetic tests.
    network_min_fraction: float = 0.01
    #: Largest dot/globule, fraction of the shorter side (squared for the area).
    dots_max_area_frac: float = 0.05
    #: A dot/globule is at least this many L* units darker than the closing around it
    #: (stronger than a network line).
    dots_min_contrast_l: float = 10.0
    #: Dots/globules present when at least this many are found (PH2: chosen by F1 on
    #: all 100 images with the procedure whose 5-fold CV is reported in docs/lesion.md).
    dots_min_count: float = 7.5
    #: Half-width of the band around the outline searched for streaks, fraction of the
    #: lesion's equivalent radius.
    streak_band_frac: float = 0.15
    #: Streaks present when radial minus tangential dark band pixels reach this share
    #: of the band (PH2: chosen by F1 on all 100 images with the procedure whose
    #: 5-fold CV is reported in docs/lesion.md).
    streak_min_excess: float = 0.0135
    #: Veil pixels: b* at least this far below the skin's (bluer than the skin) ...
    veil_min_b_drop: float = 10.0
    #: ... chroma below this (grayish-blue, not vivid) ...
    veil_max_chroma: float = 20.0
    #: ... L* at least this much below the skin's ...
    veil_min_darkening: float = 15.0
    #: ... and above this L* (not black).
    veil_min_l: float = 25.0
    #: Blue-whitish veil present when it covers this share of the lesion (PH2: chosen by
    #: F1 on all 100 images with the procedure whose 5-fold CV is in docs/lesion.md).
    veil_min_fraction: float = 0.0026
    #: Regression white (scar-like): L* within this of the skin's ...
    regression_white_max_darkening: float = 8.0
    #: ... and chroma at least this much below the skin's.
    regression_white_min_chroma_drop: float = 4.0
    #: Regression present when white plus blue-gray (peppering) areas cover this share
    #: of the lesion (PH2: chosen by F1 on all 100 images with the procedure whose
    #: 5-fold CV is reported in docs/lesion.md).
    regression_min_fraction: float = 0.0071

    def with_(self, **changes) -> "LesionConfig":
        """A copy with some values changed (``cfg.with_(seg_grabcut=True)``)."""
        return replace(self, **changes)


DEFAULT_CONFIG = LesionConfig()


def exposure_warning_config(config: LesionConfig = DEFAULT_CONFIG) -> LesionConfig:
    """``config`` with the exposure-warning limits as its ``too_dark`` / ``too_bright`` thresholds."""
    return replace(
        config,
        quality_dark_max_mean_brightness=config.exposure_warn_dark_max_mean_brightness,
        quality_bright_max_saturated_fraction=config.exposure_warn_max_saturated_fraction,
    )
