"""Classical lesion segmentation: channel choice, lighting correction, Otsu, one component.

Pipeline (``segment_work``, on a working-size image whose hair is already removed):

1. Candidate channels in which pigment is dark: CIELAB L*, the RGB blue channel
   (melanin absorbs blue most) and the first principal component of the field-of-view
   colours. The one whose Otsu split separates best (between-class / total variance,
   ``eta``) is used, after a light Gaussian blur.
2. Uneven lighting is divided out: a smooth surface (tilt + fall-off towards the
   edges) is fitted to the skin values (``skin_surface``).
3. Otsu threshold over the field of view, moved ``seg_threshold_shift`` of the way
   towards the skin class mean so the faint rim experts include is kept.
4. Opening then closing, the best component (large, central, not hugging the image
   border or the vignette: ``pick_component``), holes filled, outline smoothed.
   Optional GrabCut refinement (``seg_grabcut``).
5. Checks: mean colour difference between lesion and the skin ring around it below
   ``seg_min_contrast_de`` -> ``no_lesion`` (mask emptied: nothing is guessed);
   smaller than ``seg_min_area_frac`` of the view -> ``too_small``; outline running
   along the image border / vignette -> ``touches_border``.

If the lighting correction swallowed the lesion (a lesion filling the whole view),
steps 3-5 are retried on the uncorrected channel.

``segment(work)`` runs this on the ``WorkImage`` of the front end
(``melascan.lesion.preprocessing.prepare_work``: shrink, vignette, hair removal);
``to_input_size`` maps its result back to the input size. ``segment_lesion`` does
all three for a full-size image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from melascan.lesion.config import DEFAULT_CONFIG, LesionConfig
from melascan.lesion.preprocessing import WorkImage, disc, prepare_work, rgb_to_lab

#: Segmentation quality flags.
NO_LESION = "no_lesion"
TOUCHES_BORDER = "touches_border"
TOO_SMALL = "too_small"


@dataclass
class Segmentation:
    """A lesion mask with its outline and how much to trust it.

    ``mask``: HxW bool (``True`` = lesion), all ``False`` when ``no_lesion`` is flagged.
    ``contour``: (N, 2) int32 array of (x, y) outline points, empty without a lesion.
    ``confidence``: 0-1, how well the chosen channel separates the lesion from the ring
    of skin around it (between-class / total variance), halved when the lesion runs off
    the picture; 0 without a lesion.
    ``flags``: subset of ``no_lesion``, ``touches_border``, ``too_small``.
    ``channel``: the channel that was thresholded (``lightness``, ``blue`` or ``pca``).
    ``contrast_de``: Delta E 76 between the lesion's and the surrounding skin's mean colour.
    """

    mask: np.ndarray
    contour: np.ndarray
    confidence: float
    flags: list[str] = field(default_factory=list)
    channel: str = ""
    contrast_de: float = 0.0

    @property
    def found(self) -> bool:
        return NO_LESION not in self.flags


def masked_mean(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``image`` (HxW or HxWxC, C <= 4) over ``mask``, per channel."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    return np.asarray(cv2.mean(image, mask=mask.astype(np.uint8))[:channels])


def candidate_channels(rgb: np.ndarray, lab: np.ndarray, fov: np.ndarray) -> dict[str, np.ndarray]:
    """float32 channels on a 0-255 scale in which the lesion is darker than the skin."""
    blue = rgb[:, :, 2].astype(np.float32)
    lightness = lab[:, :, 0] * np.float32(2.55)
    sample = rgb[::2, ::2][fov[::2, ::2]].astype(np.float32)  # a quarter of the pixels is plenty
    mean = sample.mean(axis=0)
    # first principal component of the field-of-view colours, oriented so that bright
    # (skin) is high like in the other channels, then stretched to 0-255
    _, vecs = np.linalg.eigh(np.cov((sample - mean).T))
    axis = vecs[:, -1] * np.sign(vecs[:, -1].sum() or 1.0)
    projected = (sample - mean) @ axis
    lo, hi = np.percentile(projected, [0.5, 99.5])
    gain = 255.0 / max(float(hi - lo), 1e-6)
    weights = np.append(axis * gain, -(float(mean @ axis) + lo) * gain).reshape(1, 4).astype(np.float32)
    pca = np.clip(cv2.transform(rgb.astype(np.float32), weights).reshape(rgb.shape[:2]), 0.0, 255.0)
    return {"lightness": lightness, "blue": blue, "pca": pca}


def otsu(values: np.ndarray) -> tuple[float, float]:
    """Otsu threshold of a sample of 0-255 values and its separability ``eta`` (0-1).

    ``eta`` = between-class variance / total variance of the split: near 1 for two
    well separated groups, about 0.64 for a single Gaussian blob.
    """
    v8 = np.clip(values, 0, 255).astype(np.uint8).reshape(-1, 1)
    if v8.size < 2 or int(v8.min()) == int(v8.max()):
        return (float(v8[0, 0]) if v8.size else 0.0), 0.0
    t, _ = cv2.threshold(v8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    hist = np.bincount(v8.ravel(), minlength=256).astype(np.float64) / v8.size
    levels = np.arange(256, dtype=np.float64)
    k = int(t) + 1
    w0, w1 = hist[:k].sum(), hist[k:].sum()
    if w0 == 0 or w1 == 0:
        return float(t), 0.0
    m0, m1 = (hist[:k] * levels[:k]).sum() / w0, (hist[k:] * levels[k:]).sum() / w1
    mean = (hist * levels).sum()
    total = (hist * (levels - mean) ** 2).sum()
    return float(t), float(w0 * w1 * (m0 - m1) ** 2 / max(total, 1e-9))


def choose_channel(channels: dict[str, np.ndarray], fov: np.ndarray) -> tuple[str, np.ndarray, float]:
    """The channel whose Otsu split separates best: ``(name, channel, eta)``."""
    sub = fov[::2, ::2]
    scored = [(otsu(ch[::2, ::2][sub])[1], name) for name, ch in channels.items()]
    eta, name = max(scored)
    return name, channels[name], eta


def skin_surface(channel: np.ndarray, fov: np.ndarray, iterations: int = 3) -> np.ndarray:
    """A smooth surface through the skin values of ``channel`` (uneven lighting).

    Dermatoscopes and cameras light the skin unevenly: darker towards the edges of the
    view or on one side. We fit ``c0 + c1 x + c2 y + c3 x^2 + c4 y^2`` (a tilt plus a
    fall-off towards the edges, ``c3, c4 <= 0``) by least squares to the bright Otsu
    class of field-of-view pixels on a coarse grid, then refit without the pixels
    clearly below the surface (the lesion), ``iterations`` times. Returns HxW float32.
    """
    h, w = channel.shape
    step = max(1, min(h, w) // 48)  # a coarse grid is plenty for 5 coefficients
    ys, xs = np.nonzero(fov[::step, ::step])
    values = channel[::step, ::step][ys, xs].astype(np.float64)
    y, x = ys * step / h - 0.5, xs * step / w - 0.5
    design = np.stack([np.ones_like(x), x, y, x * x, y * y], axis=1)
    keep = values > otsu(values)[0]  # start from the bright (skin) class
    coef = np.array([values.mean(), 0.0, 0.0, 0.0, 0.0])
    for _ in range(iterations):
        if keep.sum() < 10:
            break
        coef = _fit_nonpositive_squares(design[keep], values[keep])
        residual = values - design @ coef
        keep = residual > -np.std(residual[keep])
    yy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    c = coef.astype(np.float32)
    return (c[0] + c[2] * yy + c[4] * yy * yy) + (c[1] * xx + c[3] * xx * xx)


def _fit_nonpositive_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least squares with the x^2 and y^2 coefficients (columns 3, 4) held <= 0: the
    light never increases towards the edges. A positive one is fixed at 0 and the rest
    refitted (an active set; exact for these two terms)."""
    gram, moment = design.T @ design, design.T @ values  # normal equations: 5x5
    free = [0, 1, 2, 3, 4]
    coef = np.zeros(5)
    for _ in range(3):
        coef[:] = 0.0
        coef[free] = np.linalg.lstsq(gram[np.ix_(free, free)], moment[free], rcond=None)[0]
        positive = [i for i in (3, 4) if i in free and coef[i] > 0]
        if not positive:
            break
        free = [i for i in free if i not in positive]
    return coef


def correct_shading(channel: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Divide out uneven lighting (``skin_surface``), keeping the mean skin level."""
    surface = skin_surface(channel, fov)
    level = float(masked_mean(surface, fov)[0])
    if not np.isfinite(level) or level < 1.0:  # a black channel: nothing to correct
        return channel
    # numerical guard, not a threshold: never divide by a surface near 0
    return channel * (level / np.maximum(surface, 0.05 * level))


def edge_zone(fov: np.ndarray) -> np.ndarray:
    """Pixels within 2 px of the image border or of the field-of-view edge."""
    inner = cv2.erode(
        fov.astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    return inner == 0


def pick_component(mask: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Keep the component with the best ``area * centrality * inner_share^2`` score.

    ``centrality = 1 / (1 + (d / (side / 4))^2)`` with ``d`` the distance from the
    component's centroid to the image centre; ``inner_share`` is the share of its
    outline away from the image border and the field-of-view edge. So the largest
    lesion near the centre wins over shadows along the edges and vignette rims.
    """
    m8 = mask.astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(m8, connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    if n == 2:
        return labels == 1
    h, w = mask.shape
    d = np.hypot(centroids[1:, 0] - (w - 1) / 2.0, centroids[1:, 1] - (h - 1) / 2.0)
    centrality = 1.0 / (1.0 + (d / (min(h, w) / 4.0)) ** 2)
    outline = mask & (cv2.erode(m8, np.ones((3, 3), np.uint8)) == 0)
    perimeter = np.bincount(labels[outline], minlength=n)[1:].astype(float)
    on_edge = np.bincount(labels[outline & edge_zone(fov)], minlength=n)[1:].astype(float)
    inner_share = 1.0 - on_edge / np.maximum(perimeter, 1.0)
    score = stats[1:, cv2.CC_STAT_AREA] * centrality * inner_share**2
    return labels == (1 + int(np.argmax(score)))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill everything inside the outer outline(s) of ``mask``."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled > 0


def smooth_mask(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Round off pixel staircases and thin spurs: blur the mask and cut at 0.5."""
    if sigma_px <= 0:
        return mask
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma_px)
    return blurred > 0.5


def ring(mask: np.ndarray, width_px: float, fov: np.ndarray) -> np.ndarray:
    """The band of skin just outside ``mask`` (``width_px`` wide, inside ``fov``)."""
    grown = cv2.dilate(mask.astype(np.uint8), disc(width_px)) > 0
    return grown & ~mask & fov


def skin_region(
    mask: np.ndarray, fov: np.ndarray, config: LesionConfig = DEFAULT_CONFIG, hair: np.ndarray | None = None
) -> np.ndarray:
    """The skin a lesion ``mask`` is compared with.

    The ring of ``config.skin_ring_frac`` of the shorter side around ``mask``, inside
    ``fov`` and off ``hair`` (if given); when that is empty (a lesion filling the view),
    whatever skin is left in the field of view.
    """
    skin = ring(mask, config.skin_ring_frac * min(mask.shape), fov)
    if hair is not None:
        skin &= ~hair
    if not skin.any():
        skin = fov & ~mask
        if hair is not None:
            skin &= ~hair
    return skin


def grabcut_refine(rgb: np.ndarray, mask: np.ndarray, fov: np.ndarray, margin_px: float) -> np.ndarray:
    """Refine ``mask`` with OpenCV GrabCut seeded from it (5 iterations).

    Sure lesion: the mask eroded by ``margin_px``; probable lesion: the mask; probable
    skin: a ``2 * margin_px`` band around it; sure skin: everything else.
    """
    m8 = mask.astype(np.uint8)
    gc = np.full(mask.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(m8, disc(2 * margin_px)) > 0] = cv2.GC_PR_BGD
    gc[mask] = cv2.GC_PR_FGD
    gc[cv2.erode(m8, disc(margin_px)) > 0] = cv2.GC_FGD
    gc[~fov] = cv2.GC_BGD
    background = (gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)
    if not (gc == cv2.GC_FGD).any() or background.sum() < 2:  # GrabCut needs samples of both
        return mask
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(rgb[:, :, ::-1]), gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def outer_contour(mask: np.ndarray) -> np.ndarray:
    """(N, 2) int32 (x, y) points of the largest outer contour; empty if none."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), np.int32)
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.int32)


def border_touch_fraction(contour: np.ndarray, fov: np.ndarray) -> float:
    """Share of contour points on the image border or the field-of-view edge."""
    if len(contour) == 0:
        return 0.0
    return float(np.mean(edge_zone(fov)[contour[:, 1], contour[:, 0]]))


def color_contrast_de(lab: np.ndarray, mask: np.ndarray, skin: np.ndarray) -> float:
    """Delta E 76 between the mean CIELAB colours of ``mask`` and ``skin`` (0 if either is empty)."""
    if not mask.any() or not skin.any():
        return 0.0
    return float(np.linalg.norm(masked_mean(lab, mask) - masked_mean(lab, skin)))


def separability(channel: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """Between-class / total variance of ``channel`` split into ``inside`` and ``outside``."""
    n0, n1 = int(inside.sum()), int(outside.sum())
    if n0 == 0 or n1 == 0:
        return 0.0
    m0, m1 = float(masked_mean(channel, inside)[0]), float(masked_mean(channel, outside)[0])
    both = inside | outside
    total = float(channel[both].var())
    w0 = n0 / (n0 + n1)
    return float(np.clip(w0 * (1 - w0) * (m0 - m1) ** 2 / max(total, 1e-9), 0.0, 1.0))


def threshold_mask(
    channel: np.ndarray, rgb: np.ndarray, fov: np.ndarray, config: LesionConfig = DEFAULT_CONFIG
) -> np.ndarray:
    """Otsu (shifted towards skin) + opening/closing + best component + holes + smoothing."""
    side = min(channel.shape)
    values = channel[fov]
    t, _ = otsu(values)
    bright = values[values > t]
    skin_mean = float(bright.mean()) if bright.size else t
    t += config.seg_threshold_shift * (skin_mean - t)
    mask = (channel <= t) & fov
    r = config.seg_morph_frac * side
    m8 = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disc(r))
    m8 = cv2.morphologyEx(m8, cv2.MORPH_CLOSE, disc(r))
    mask = fill_holes(pick_component(m8 > 0, fov))
    mask = smooth_mask(mask, r) & fov
    if config.seg_grabcut and mask.any():
        mask = fill_holes(pick_component(grabcut_refine(rgb, mask, fov, 2 * r), fov)) & fov
    return mask


def segment_work(
    rgb: np.ndarray,
    fov: np.ndarray,
    config: LesionConfig = DEFAULT_CONFIG,
    lab: np.ndarray | None = None,
) -> Segmentation:
    """Segment a (hair-free, working-size) image; see the module docstring.

    ``fov``: the field-of-view mask; ``lab``: ``rgb_to_lab(rgb)`` if already computed.
    """
    h, w = rgb.shape[:2]
    side = min(h, w)
    empty = Segmentation(np.zeros((h, w), bool), np.zeros((0, 2), np.int32), 0.0, [NO_LESION])
    if fov.sum() < config.fov_min_fraction * h * w:
        return empty
    lab = rgb_to_lab(rgb) if lab is None else lab
    name, raw, _ = choose_channel(candidate_channels(rgb, lab, fov), fov)
    raw = cv2.GaussianBlur(raw, (0, 0), config.seg_blur_frac * side)
    attempts = [correct_shading(raw, fov), raw] if config.seg_shading_correction else [raw]
    empty.channel = name
    for channel in attempts:  # uncorrected if the correction hid the lesion (one filling the view)
        mask = threshold_mask(channel, rgb, fov, config)
        if not mask.any():
            continue
        skin = skin_region(mask, fov, config)
        contrast = color_contrast_de(lab, mask, skin)
        empty.contrast_de = round(contrast, 2)
        if contrast >= config.seg_min_contrast_de:
            break
    else:
        return empty

    flags: list[str] = []
    contour = outer_contour(mask)
    if mask.sum() < config.seg_min_area_frac * fov.sum():
        flags.append(TOO_SMALL)
    touches = border_touch_fraction(contour, fov) > config.seg_border_touch_frac
    if touches:
        flags.append(TOUCHES_BORDER)
    confidence = separability(channel, mask, skin) * (0.5 if touches else 1.0)
    return Segmentation(mask, contour, round(confidence, 3), flags, name, empty.contrast_de)


def segment(work: WorkImage, config: LesionConfig = DEFAULT_CONFIG) -> Segmentation:
    """Segment the lesion of a prepared image, at the working size.

    Parameters
    ----------
    work : WorkImage
        From ``prepare_work(rgb, config)`` (hair-free image, field of view, Lab).
    config : LesionConfig, optional
        Uses the ``seg_*`` values, ``skin_ring_frac`` and ``fov_min_fraction``.

    Returns
    -------
    seg : Segmentation
        Mask and contour at the working size (``work.fov.shape``); see the module
        docstring. ``to_input_size(seg, work)`` maps it to the input size.
    """
    return segment_work(work.clean, work.fov, config, work.lab)


def upscale_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Map a working-size mask to ``shape`` (H, W) with a smooth outline."""
    if mask.shape == tuple(shape):
        return mask.copy()
    up = cv2.resize(mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return up > 127


def to_input_size(seg: Segmentation, work: WorkImage) -> Segmentation:
    """A working-size ``seg`` (from ``segment(work)``) mapped to the input image.

    Returns a new ``Segmentation``: the mask upscaled to ``work.input_shape``
    (``upscale_mask``), its outline traced again at that size (empty without a
    lesion); confidence, flags, channel and contrast are unchanged.
    """
    mask = upscale_mask(seg.mask, work.input_shape)
    contour = outer_contour(mask) if seg.found else np.zeros((0, 2), np.int32)
    return Segmentation(mask, contour, seg.confidence, list(seg.flags), seg.channel, seg.contrast_de)


def segment_lesion(rgb: np.ndarray, config: LesionConfig = DEFAULT_CONFIG) -> Segmentation:
    """Segment the lesion of an ``HxWx3`` ``uint8`` RGB dermoscopy image.

    ``prepare_work`` (shrink to ``config.work_side_px``, mask the vignette, remove
    hair), ``segment`` (see the module docstring) and ``to_input_size``: the returned
    ``Segmentation`` is at the input size.
    """
    work = prepare_work(rgb, config)
    return to_input_size(segment(work, config), work)
