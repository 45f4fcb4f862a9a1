"""C of ABCD: which of the six dermoscopic colours a lesion shows, and how much of each.

Every lesion pixel (hair excluded) is named by the first rule it meets, in CIELAB
(D65; L* 0-100, chroma ``C* = hypot(a*, b*)``, hue angle ``h = atan2(b*, a*)``), with
lightness judged relative to the surrounding skin (``L_skin``, ``C_skin``: median of
a ring of skin just outside the lesion):

==============  =================================================================
black           L* < ``color_black_max_l`` and C* < ``color_black_max_chroma``
blue_gray       b* < ``color_blue_gray_max_b`` and L* < L_skin - ``color_blue_gray_min_darkening``
white           L* > L_skin - ``color_white_max_darkening`` and C* < C_skin - ``color_white_min_chroma_drop``
red             h < ``color_red_max_hue_deg`` and C* > ``color_red_min_chroma``
dark_brown      L* < ``color_dark_brown_max_l_ratio`` x L_skin
light_brown     L* < ``color_light_brown_max_l_ratio`` x L_skin
(none)          anything else: skin-coloured
==============  =================================================================

A colour is *present* when its pixels cover at least ``color_min_fraction[name]`` of
the lesion. The rules and shares of the five colours other than red are what the
tuning procedure of ``benchmarks/ph2_validation.py`` picks on the 100 PH2 images;
docs/lesion.md reports that procedure's 5-fold cross-validated agreement with the
experts. Red is defined by reasoning only: PH2's 4 red-labelled lesions are not
redder than the others in the picture, so it cannot be tuned there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig

#: The six dermoscopic colours, in Stolz's order; ``classify_pixels`` returns 1-6 for
#: these, 0 for skin-coloured pixels.
COLOR_NAMES = ("white", "red", "light_brown", "dark_brown", "blue_gray", "black")

#: RGB display colours for maps and legends (the web app uses the same palette).
COLOR_PALETTE: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "red": (220, 40, 50),
    "light_brown": (210, 150, 90),
    "dark_brown": (120, 65, 25),
    "blue_gray": (95, 125, 175),
    "black": (20, 20, 20),
}

#: CIELAB of the median PH2 skin; the reference when no skin is visible around the lesion.
FALLBACK_SKIN_LAB = (70.2, 15.3, 20.7)


@dataclass(frozen=True)
class Colors:
    """Stolz's C (0-6): the colours present and every colour's share of the lesion."""

    score: int
    present: tuple[str, ...]
    fractions: dict[str, float]
    skin_lab: tuple[float, float, float]


def skin_reference(lab: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Median CIELAB of the ``skin`` pixels, or ``FALLBACK_SKIN_LAB`` if there are none."""
    pixels = lab[skin]
    if len(pixels) == 0:
        return np.asarray(FALLBACK_SKIN_LAB, np.float32)
    if len(pixels) > 4000:  # the median of an even sample is as good and much cheaper
        pixels = pixels[:: len(pixels) // 2000]
    return np.median(pixels, axis=0).astype(np.float32)


def classify_pixels(
    lab_pixels: np.ndarray, skin_lab: np.ndarray, config: LesionConfig = DEFAULT_CONFIG
) -> np.ndarray:
    """Colour index per pixel: 0 = none, 1-6 = ``COLOR_NAMES[i - 1]`` (rules in the module doc).

    ``lab_pixels``: (..., 3) CIELAB values; ``skin_lab``: the surrounding skin's CIELAB.
    """
    L, a, b = lab_pixels[..., 0], lab_pixels[..., 1], lab_pixels[..., 2]
    chroma = np.hypot(a, b)
    hue_deg = np.degrees(np.arctan2(b, a))
    skin_l, skin_chroma = float(skin_lab[0]), float(np.hypot(skin_lab[1], skin_lab[2]))
    c = config
    rules = [  # (colour, condition) in order of precedence
        ("black", (L < c.color_black_max_l) & (chroma < c.color_black_max_chroma)),
        ("blue_gray", (b < c.color_blue_gray_max_b) & (L < skin_l - c.color_blue_gray_min_darkening)),
        ("white", (L > skin_l - c.color_white_max_darkening) & (chroma < skin_chroma - c.color_white_min_chroma_drop)),
        ("red", (hue_deg < c.color_red_max_hue_deg) & (chroma > c.color_red_min_chroma)),
        ("dark_brown", L < c.color_dark_brown_max_l_ratio * skin_l),
        ("light_brown", L < c.color_light_brown_max_l_ratio * skin_l),
    ]
    index = np.zeros(L.shape, np.uint8)
    for name, condition in reversed(rules):  # earlier rules overwrite later ones
        index[condition] = COLOR_NAMES.index(name) + 1
    return index


def color_fractions(index: np.ndarray) -> dict[str, float]:
    """Share of the given pixels (``classify_pixels`` output) per colour."""
    counts = np.bincount(index.ravel(), minlength=len(COLOR_NAMES) + 1)
    total = max(int(counts.sum()), 1)
    return {name: round(float(counts[i + 1]) / total, 4) for i, name in enumerate(COLOR_NAMES)}


def colors(
    lab: np.ndarray,
    lesion: np.ndarray,
    skin: np.ndarray,
    config: LesionConfig = DEFAULT_CONFIG,
) -> tuple[Colors, np.ndarray]:
    """Stolz's C and the colour map of a lesion.

    ``lab``: HxWx3 float32 CIELAB image; ``lesion``: HxW bool, the pixels to judge;
    ``skin``: HxW bool, the reference skin pixels (hair already left out of both).
    Returns ``(Colors, color_map)``, ``color_map`` HxW uint8: 0 outside the lesion or
    unnamed, ``i`` = ``COLOR_NAMES[i - 1]``.
    """
    skin_lab = skin_reference(lab, skin)
    index = classify_pixels(lab[lesion], skin_lab, config)
    fractions = color_fractions(index)
    present = tuple(n for n in COLOR_NAMES if fractions[n] > 0 and fractions[n] >= config.color_min_fraction[n])
    color_map = np.zeros(lesion.shape, np.uint8)
    color_map[lesion] = index
    result = Colors(len(present), present, fractions, tuple(round(float(v), 2) for v in skin_lab))
    return result, color_map
