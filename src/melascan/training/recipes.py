"""Augmentation recipes, by the names of the seed's table 4.

Each recipe is a ``torchvision.transforms.v2`` pipeline applied to one ``uint8``
``3xHxW`` tensor (the cached, already resized image) and returning a ``uint8``
tensor of the same size; normalisation happens afterwards, on the batch.

Single transforms (parameters chosen for dermoscopy: lesions have no canonical
orientation, colour varies between dermoscopes):

====  ==========================================================================
F1    horizontal flip, p = 0.5
F2    rotation, uniform in [-30, +30] degrees, bilinear, black corners
F3    colour jitter: brightness 0.2, contrast 0.2, saturation 0.2, hue 0.02
F4    affine: translate up to 10 %, scale 0.9-1.1, shear up to 10 degrees
F5    histogram equalisation, p = 0.5
====  ==========================================================================

Combinations: ``C1`` F1+F2, ``C2`` F1+F3, ``C3`` F2+F3, ``C4`` F1+F2+F3,
``C5`` F1+F2+F4, ``C6`` F1+F4+F5, ``C7`` F1+F2+F3+F5, ``C8`` F1+F2+F3+F4+F5,
``baseline`` none. Extra (not in the seed): ``C4S`` = C4 with stronger colour
jitter (brightness 0.4, contrast 0.4, saturation 0.4, hue 0.08) plus a vertical
flip, meant to make the model robust to other dermoscopes and phone cameras.
``C4SF`` = C4S plus ``FRAME``: with p = 0.3 a random dark circular dermatoscope
frame is painted on the image, whatever its class. In the melanoma-10k data 29 %
of malignant but 0.2 % of benign training images have such a frame (docs/data.md),
a shortcut this breaks.

``MS`` (multi-source, for the mixed manifest of ``prepare --mix``) makes a source's
look carry no label: ``RRC`` random-resized crop (area 0.5-1, aspect 3/4-4/3), both flips,
rotation, strong colour jitter, ``RES`` (p = 0.5: down-scale to 35-100 % of the side and back,
so sharpness and resolution vary within every source), ``JPEG`` (p = 0.5: re-compression at
quality 30-95) and ``FRAME``. ``MSZ`` = MS plus ``ZOOMOUT`` (p = 0.3: shrink to 60-100 % of the
side into a margin of the edge's colour), so a lesion is also seen with more skin
around it than its source shows (``RRC`` only zooms in); melanoma-10k's benign lesions fill a
quarter as much of their pictures as its melanomas (docs/data.md, ``framing``).
``MSA`` = MS plus ``INK`` (p = 0.25: violet surgical-marker strokes or dots around the lesion)
and ``RULER`` (p = 0.25: a millimetre scale along one edge), painted by
``evaluation.shift.ink_marks`` / ``ruler`` whatever the class: a clinic marks a lesion it
worries about, and some of melanoma-10k's benign pictures carry a scale (seen, not counted),
so neither may carry a label.

The module imports no torch at load time: ``RECIPES`` maps each name to a
factory that builds the pipeline when called.
"""

from __future__ import annotations

from typing import Callable

#: Components of every recipe, in application order (geometry first, then colour).
RECIPE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "baseline": (),
    "F1": ("F1",),
    "F2": ("F2",),
    "F3": ("F3",),
    "F4": ("F4",),
    "F5": ("F5",),
    "C1": ("F1", "F2"),
    "C2": ("F1", "F3"),
    "C3": ("F2", "F3"),
    "C4": ("F1", "F2", "F3"),
    "C5": ("F1", "F2", "F4"),
    "C6": ("F1", "F4", "F5"),
    "C7": ("F1", "F2", "F3", "F5"),
    "C8": ("F1", "F2", "F3", "F4", "F5"),
    "C4S": ("F1", "VFLIP", "F2", "F3S"),
    "C4SF": ("F1", "VFLIP", "F2", "F3S", "FRAME"),
    "MS": ("RRC", "F1", "VFLIP", "F2", "F3S", "RES", "JPEG", "FRAME"),
    "MSZ": ("RRC", "ZOOMOUT", "F1", "VFLIP", "F2", "F3S", "RES", "JPEG", "FRAME"),
    "MSA": ("RRC", "F1", "VFLIP", "F2", "INK", "RULER", "F3S", "RES", "JPEG", "FRAME"),
}


#: The recipes of the seed's table 4 (the ``augment`` study grid), in table order.
SEED_RECIPES = ("baseline", "F1", "F2", "F3", "F4", "F5", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8")


class RandomDermoscopeFrame:
    """With probability ``p``, blacken everything outside a random centred circle.

    The radius is ``radius_range`` times the image side (0.5 touches the edges), the
    centre moves by up to ``max_shift`` of the side, and the frame is a dark gray
    (0-25) like a real dermatoscope's vignette. Works on ``uint8`` ``3xHxW`` tensors.
    """

    def __init__(self, p: float = 0.3, radius_range=(0.42, 0.56), max_shift: float = 0.04):
        self.p, self.radius_range, self.max_shift = p, radius_range, max_shift

    def __call__(self, img):
        import torch

        if torch.rand(()) >= self.p:
            return img
        h, w = img.shape[-2:]
        side = min(h, w)
        lo, hi = self.radius_range
        radius = side * (lo + (hi - lo) * float(torch.rand(())))
        cy, cx = ((torch.rand(2) - 0.5) * 2 * self.max_shift * side).tolist()
        yy = torch.arange(h, dtype=torch.float32)[:, None] - (h - 1) / 2 - cy
        xx = torch.arange(w, dtype=torch.float32)[None, :] - (w - 1) / 2 - cx
        outside = (yy**2 + xx**2) > radius**2
        shade = int(torch.randint(0, 26, ()))
        out = img.clone()
        out[..., outside] = shade
        return out

    def __repr__(self) -> str:
        return f"RandomDermoscopeFrame(p={self.p}, radius_range={self.radius_range})"


class RandomResolution:
    """With probability ``p``, down-scale by a factor in ``scale_range`` (area filter) and back
    up (bilinear): the image keeps its size but loses detail, as on a lower-resolution camera."""

    def __init__(self, p: float = 0.5, scale_range=(0.35, 1.0)):
        self.p, self.scale_range = p, scale_range

    def __call__(self, img):
        import torch
        import torch.nn.functional as F

        if torch.rand(()) >= self.p:
            return img
        h, w = img.shape[-2:]
        lo, hi = self.scale_range
        scale = lo + (hi - lo) * float(torch.rand(()))
        small = (max(8, round(h * scale)), max(8, round(w * scale)))
        x = img.unsqueeze(0).float()
        x = F.interpolate(x, size=small, mode="area")
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return x.squeeze(0).round().clamp(0, 255).to(img.dtype)

    def __repr__(self) -> str:
        return f"RandomResolution(p={self.p}, scale_range={self.scale_range})"


def _on_rgb_array(img, change: Callable):
    """``change`` (an ``evaluation.shift`` function on an H x W x 3 array) applied to a 3 x H x W tensor."""
    import torch

    out = change(img.permute(1, 2, 0).contiguous().numpy())
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()


class RandomZoomOut:
    """With probability ``p``, ``evaluation.shift.zoom`` by a factor in ``scale_range``: the
    picture shrinks into a margin of its edge's colour, the same lesion with more skin around
    it, as a lower magnification frames it."""

    def __init__(self, p: float = 0.3, scale_range=(0.6, 1.0)):
        self.p, self.scale_range = p, scale_range

    def __call__(self, img):
        import torch

        from melascan.evaluation.shift import zoom

        if torch.rand(()) >= self.p:
            return img
        lo, hi = self.scale_range
        factor = lo + (hi - lo) * float(torch.rand(()))
        return _on_rgb_array(img, lambda rgb: zoom(rgb, factor))

    def __repr__(self) -> str:
        return f"RandomZoomOut(p={self.p}, scale_range={self.scale_range})"


class RandomArtefact:
    """With probability ``p``, ``paint(rgb, rng)`` (an ``evaluation.shift`` artefact painter:
    ``ink_marks``, ``ruler``) on the picture, with a generator seeded from torch's, so the
    marks differ per image and follow the data loader's worker seeding."""

    def __init__(self, paint: Callable, p: float = 0.25):
        self.paint, self.p = paint, p

    def __call__(self, img):
        import numpy as np
        import torch

        if torch.rand(()) >= self.p:
            return img
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))
        return _on_rgb_array(img, lambda rgb: self.paint(rgb, rng))

    def __repr__(self) -> str:
        return f"RandomArtefact({self.paint.__name__}, p={self.p})"


class RandomJpeg:
    """With probability ``p``, JPEG re-compression at a random quality in ``quality`` (torchvision's)."""

    def __init__(self, p: float = 0.5, quality=(30, 95)):
        from torchvision.transforms import v2

        self.p, self.jpeg = p, v2.JPEG(quality=quality)

    def __call__(self, img):
        import torch

        return self.jpeg(img) if torch.rand(()) < self.p else img

    def __repr__(self) -> str:
        return f"RandomJpeg(p={self.p}, {self.jpeg!r})"


class RandomResizedCropSameSize:
    """Random-resized crop back to the input's own size (the cache already holds the train size)."""

    def __init__(self, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
        self.scale, self.ratio = scale, ratio

    def __call__(self, img):
        from torchvision.transforms import v2

        return v2.RandomResizedCrop(tuple(img.shape[-2:]), scale=self.scale, ratio=self.ratio, antialias=True)(img)

    def __repr__(self) -> str:
        return f"RandomResizedCropSameSize(scale={self.scale}, ratio={self.ratio})"


def _component(name: str):
    """One torchvision v2 transform by its short name (parameters documented above)."""
    from torchvision.transforms import v2

    if name == "F1":
        return v2.RandomHorizontalFlip(p=0.5)
    if name == "VFLIP":
        return v2.RandomVerticalFlip(p=0.5)
    if name == "F2":
        return v2.RandomRotation(degrees=30, interpolation=v2.InterpolationMode.BILINEAR)
    if name == "F3":
        return v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)
    if name == "F3S":
        return v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.08)
    if name == "F4":
        return v2.RandomAffine(
            degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10,
            interpolation=v2.InterpolationMode.BILINEAR,
        )
    if name == "F5":
        return v2.RandomEqualize(p=0.5)
    if name == "FRAME":
        return RandomDermoscopeFrame(p=0.3)
    if name == "RRC":
        return RandomResizedCropSameSize()
    if name == "RES":
        return RandomResolution()
    if name == "JPEG":
        return RandomJpeg()
    if name == "ZOOMOUT":
        return RandomZoomOut()
    if name in ("INK", "RULER"):
        from melascan.evaluation.shift import ink_marks, ruler

        return RandomArtefact(ink_marks if name == "INK" else ruler)
    raise KeyError(name)


def _factory(name: str) -> Callable[[], Callable]:
    def build():
        from torchvision.transforms import v2

        parts = [_component(c) for c in RECIPE_COMPONENTS[name]]
        return v2.Compose(parts) if parts else v2.Identity()

    build.__doc__ = f"Recipe {name}: {' + '.join(RECIPE_COMPONENTS[name]) or 'no augmentation'}."
    return build


#: name -> factory returning the transform (call it: ``RECIPES["C4"]()``).
RECIPES: dict[str, Callable[[], Callable]] = {name: _factory(name) for name in RECIPE_COMPONENTS}


def build_recipe(name: str):
    """The v2 transform of recipe ``name`` (``KeyError`` with the valid names otherwise)."""
    if name not in RECIPES:
        raise KeyError(f"unknown augmentation recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]()
