"""Pre-processing before segmentation: working size, field of view, hair removal.

``prepare_work`` is the lesion front end: every caller (``analyze_lesion``,
``assess_quality``, ``segment_lesion``, the PH2 validation and the lesion benchmark)
starts from the ``WorkImage`` it returns, so they all see the same pixels. Its steps:

* ``to_work_size`` shrinks the image so the analysis costs the same on any input.
* ``field_of_view_mask`` finds the dark circular vignette / dark corners that
  dermatoscopes leave around the picture, so they are never taken for lesion.
* ``remove_hair`` is the DullRazor idea (Lee et al., 1997): dark thin hair shows up in
  a morphological black-hat of the gray image; its pixels are replaced by
  ``cv2.inpaint`` from their surroundings;
* ``rgb_to_lab`` converts the hair-free image to CIELAB for the segmentation and the
  features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.morphology import skeletonize

from melascan.errors import ImageError
from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig


#: Longest accepted side as a multiple of the shorter one. The asymmetry step rotates the
#: lesion on a square canvas as wide as its longest extent, so memory grows with the
#: square of the aspect ratio (an 80x12640 strip needed more than 2 GB); no dermoscopy
#: picture is this elongated.
MAX_ASPECT_RATIO = 10


def check_rgb(rgb) -> np.ndarray:
    """Refuse anything but an HxWx3 uint8 array of a usable size and aspect ratio
    (a clear error instead of a wrong result)."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        desc = f"{type(rgb).__name__} {getattr(rgb, 'shape', '')} {getattr(rgb, 'dtype', '')}".strip()
        raise ImageError(f"lesion analysis needs an HxWx3 uint8 RGB array, got {desc}")
    if max(rgb.shape[:2]) > MAX_ASPECT_RATIO * (min(rgb.shape[:2]) + 1):  # +1: resizing rounds
        raise ImageError(
            f"image too elongated for lesion analysis ({rgb.shape[1]}x{rgb.shape[0]} px); "
            f"the longer side may be at most {MAX_ASPECT_RATIO} times the shorter"
        )
    if min(rgb.shape[:2]) < 16:
        raise ImageError(f"image too small for lesion analysis ({rgb.shape[1]}x{rgb.shape[0]} px)")
    return rgb


def to_work_size(rgb: np.ndarray, side_px: int) -> tuple[np.ndarray, float]:
    """Shrink ``rgb`` so its shorter side is ``side_px`` (never enlarge).

    Returns ``(work_rgb, scale)`` where ``scale = input px / work px`` (>= 1).
    """
    h, w = rgb.shape[:2]
    scale = min(h, w) / float(side_px)
    if scale <= 1.0:
        return np.ascontiguousarray(rgb), 1.0
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _odd(n: float, minimum: int = 3) -> int:
    n = max(minimum, int(round(n)))
    return n if n % 2 else n + 1


def disc(radius_px: float) -> np.ndarray:
    """A disc-shaped structuring element of the given radius (at least 1 px)."""
    d = _odd(2 * radius_px + 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def brightness(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel brightness: max(R, G, B), the V of HSV, uint8."""
    return cv2.max(cv2.max(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])


def field_of_view_mask(rgb: np.ndarray, config: LesionConfig = DEFAULT_CONFIG) -> np.ndarray:
    """``True`` where the skin is visible, ``False`` on the dermatoscope's dark vignette.

    A pixel is dark when its brightness is below ``fov_dark_fraction`` of the bright
    skin level (or below ``fov_dark_abs``). Dark regions connected to the image border
    are the vignette, unless they reach near the image centre (then they are a dark
    lesion running off the picture, and only their part in the outer corner zone, beyond
    the image's inscribed circle, is taken as vignette). The vignette is then widened by
    ``fov_margin_frac`` to cover its shaded rim.
    """
    h, w = rgb.shape[:2]
    v = brightness(rgb)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    central = v[int(h * 0.25) : int(h * 0.75) + 1, int(w * 0.25) : int(w * 0.75) + 1]
    skin_level = float(np.percentile(central, 90))
    dark = (v < max(config.fov_dark_abs, config.fov_dark_fraction * skin_level)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if n <= 1:
        return np.ones((h, w), bool)
    border_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border_labels = border_labels[border_labels > 0]
    if border_labels.size == 0:
        return np.ones((h, w), bool)
    yy, xx = np.ogrid[:h, :w]
    radius = np.sqrt(((yy - cy) / (h / 2.0)) ** 2 + ((xx - cx) / (w / 2.0)) ** 2)  # 1 = inscribed ellipse
    half_diag = np.sqrt(2.0)
    keepout = radius < config.fov_center_keepout * half_diag
    outside = np.zeros((h, w), bool)
    for lab in border_labels:
        comp = labels == lab
        if (comp & keepout).any():
            comp &= radius > 1.0  # a dark lesion at the edge: keep only the corner zone
        outside |= comp
    if not outside.any():
        return np.ones((h, w), bool)
    margin = config.fov_margin_frac * min(h, w)
    outside = cv2.dilate(outside.astype(np.uint8), disc(margin)) > 0
    return ~outside


def hair_mask(
    rgb: np.ndarray, config: LesionConfig = DEFAULT_CONFIG, fov: np.ndarray | None = None
) -> np.ndarray:
    """``True`` on dark hair: thin, long structures in the black-hat of the gray image.

    The black-hat (closing minus image) is large where a dark structure narrower than
    the structuring element crosses brighter skin. Its thresholded components are kept
    only when long (``hair_min_length_frac``) and thin (``hair_max_width_frac``), which
    leaves dots, globules and the lesion itself alone, and when they enclose at most
    ``hair_max_loops`` network-sized holes (crossing hairs make a few loops, mostly
    large; a mesh of many small ones is a pigment network, which must stay). Pixels outside ``fov`` (the
    field-of-view mask, if given) are never hair.
    """
    side = min(rgb.shape[:2])
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    k = _odd(config.hair_kernel_frac * side)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    candidate = blackhat > config.hair_threshold
    if fov is not None:
        candidate &= fov
    candidate = candidate.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    if n <= 1:
        return np.zeros(gray.shape, bool)
    # length of each component = pixels on its skeleton; mean width = area / length
    skeleton = skeletonize(candidate > 0)
    length = np.bincount(labels[skeleton], minlength=n).astype(float)
    width = stats[:, cv2.CC_STAT_AREA] / np.maximum(length, 1.0)
    keep = (length >= config.hair_min_length_frac * side) & (width <= config.hair_max_width_frac * side)
    keep[0] = False
    mesh_hole_px = (config.network_max_hole_frac * side) ** 2
    keep &= enclosed_holes(candidate, labels, n, mesh_hole_px) <= config.hair_max_loops  # a mesh is pigment network
    mask = keep[labels]
    # grow by one pixel so inpainting does not smear the hair's dark fringe
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def enclosed_holes(binary: np.ndarray, labels: np.ndarray, n: int, max_area_px: float) -> np.ndarray:
    """Number of small holes (enclosed background pieces of at most ``max_area_px``) of
    each of the ``n`` labelled components of ``binary`` (index 0, the background, gets 0).
    Crossing hairs enclose a few large pieces; a pigment network many small ones."""
    contours, hierarchy = cv2.findContours(binary.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    holes = np.zeros(n, np.int64)
    if hierarchy is None:
        return holes
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0]):
        if parent >= 0 and cv2.contourArea(contour) <= max_area_px:  # a small hole of the parent's component
            x, y = contours[parent][0, 0]
            holes[labels[y, x]] += 1
    holes[0] = 0
    return holes


def remove_hair(
    rgb: np.ndarray, config: LesionConfig = DEFAULT_CONFIG, fov: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """DullRazor hair removal: ``(clean_rgb, hair_mask)``; hair pixels are inpainted.

    ``rgb`` is ``HxWx3`` ``uint8``; ``clean_rgb`` has the same shape, ``hair_mask`` is
    ``HxW`` bool. Works at any size; the analysis calls it at the working size.
    """
    mask = hair_mask(rgb, config, fov)
    if not mask.any():
        return rgb.copy(), mask
    clean = cv2.inpaint(rgb, mask.astype(np.uint8), config.hair_inpaint_radius_px, cv2.INPAINT_TELEA)
    return clean, mask


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``uint8`` sRGB -> ``float32`` CIELAB (D65): L* in 0-100, a* and b* about -128..127."""
    return cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255.0), cv2.COLOR_RGB2LAB)


@dataclass(frozen=True)
class WorkImage:
    """One image at the working size, ready for segmentation and the features.

    Built by ``prepare_work``; treat the arrays as read-only.

    Attributes
    ----------
    rgb : (h, w, 3) uint8 ndarray
        The input shrunk to the working size, hair still in it (the quality checks
        look at this one).
    scale : float
        Input pixels per working pixel (>= 1; 1 when the input was already small).
    input_shape : tuple of int
        ``(H, W)`` of the input image; masks are mapped back to this size.
    fov : (h, w) bool ndarray
        The field of view: ``False`` on the dermatoscope's dark vignette.
    hair : (h, w) bool ndarray
        The hair found by ``hair_mask`` (looked for inside ``fov``, grown by one pixel).
    clean : (h, w, 3) uint8 ndarray
        ``rgb`` with the hair pixels inpainted.
    lab : (h, w, 3) float32 ndarray
        ``rgb_to_lab(clean)``: CIELAB of the hair-free image.
    """

    rgb: np.ndarray = field(repr=False)
    scale: float
    input_shape: tuple[int, int]
    fov: np.ndarray = field(repr=False)
    hair: np.ndarray = field(repr=False)
    clean: np.ndarray = field(repr=False)
    lab: np.ndarray = field(repr=False)


def prepare_work(rgb: np.ndarray, config: LesionConfig = DEFAULT_CONFIG) -> WorkImage:
    """The lesion front end: shrink, find the field of view, remove hair, convert to Lab.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
        A dermoscopy image (checked by ``check_rgb``).
    config : LesionConfig, optional
        Uses ``work_side_px``, the ``fov_*`` and the ``hair_*`` values.

    Returns
    -------
    work : WorkImage
        The working-size image, its field of view, hair mask, hair-free image and its
        CIELAB version. ``melascan.lesion.segmentation.segment(work, config)`` segments
        it; ``to_input_size`` maps the result back to ``(H, W)``.

    Raises
    ------
    ImageError
        If ``rgb`` is not a usable ``HxWx3`` ``uint8`` image (see ``check_rgb``).

    Examples
    --------
    >>> work = prepare_work(rgb)                       # doctest: +SKIP
    >>> seg = to_input_size(segment(work), work)       # doctest: +SKIP
    """
    rgb = check_rgb(rgb)
    small, scale = to_work_size(rgb, config.work_side_px)
    fov = field_of_view_mask(small, config)
    clean, hair = remove_hair(small, config, fov)
    return WorkImage(
        rgb=small,
        scale=scale,
        input_shape=(rgb.shape[0], rgb.shape[1]),
        fov=fov,
        hair=hair,
        clean=clean,
        lab=rgb_to_lab(clean),
    )
