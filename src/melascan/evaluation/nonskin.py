"""Images that are not dermoscopy, made on the spot: for checking out-of-scope rejection.

``non_skin_images()`` returns named ``HxWx3`` ``uint8`` RGB arrays: printed text, flat
colours, noise, gradients, and every colour or gray photo that scikit-image ships
(a person, a cat, coffee, a rocket, coins, the moon, a fundus photo, microscopy...).
Nothing is downloaded; the same call always gives the same images. The tests and
``benchmarks/scope_rates.py`` both use it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: scikit-image sample images bundled with the package (no download).
SKIMAGE_SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "hubble_deep_field",
                   "immunohistochemistry", "page", "text", "retina", "moon", "brick", "grass", "gravel",
                   "colorwheel", "logo", "horse")
FLAT_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "skin_tone": (224, 172, 145),
                "red": (200, 30, 30), "blue": (40, 60, 200)}


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Gray, boolean or RGBA -> ``uint8`` RGB."""
    a = np.asarray(image)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.shape[-1] == 4:
        a = a[..., :3]
    return np.ascontiguousarray(a.astype(np.uint8))


def printed_text(seed: int = 0, size: tuple[int, int] = (400, 300)) -> np.ndarray:
    """A photo-like page of black text on off-white paper."""
    rng = np.random.default_rng(seed)
    page = Image.new("RGB", size, (245, 242, 235))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    words = ["melanoma", "screening", "report", "patient", "the", "of", "and", "dermatology", "page", "notes"]
    for line in range(10):
        text = " ".join(rng.choice(words, size=4))
        draw.text((16, 12 + line * 28), text, fill=(20, 20, 20), font=font)
    return np.asarray(page)


def non_skin_images(seed: int = 0) -> dict[str, np.ndarray]:
    """Named non-dermoscopy RGB images (see module doc)."""
    import skimage.data

    rng = np.random.default_rng(seed)
    images: dict[str, np.ndarray] = {"printed_text": printed_text(seed), "printed_text_2": printed_text(seed + 1)}
    for name, colour in FLAT_COLOURS.items():
        images[f"flat_{name}"] = np.full((300, 300, 3), colour, np.uint8)
    images["noise_uniform"] = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    images["noise_gaussian"] = np.clip(rng.normal(128, 40, (300, 300, 3)), 0, 255).astype(np.uint8)
    ramp = np.linspace(0, 255, 300, dtype=np.float32)
    images["gradient"] = np.stack([np.tile(ramp, (300, 1)), np.tile(ramp[:, None], (1, 300)),
                                   np.full((300, 300), 128.0)], axis=-1).astype(np.uint8)
    for name in SKIMAGE_SAMPLES:
        images[f"skimage_{name}"] = to_rgb(getattr(skimage.data, name)())
    return images
