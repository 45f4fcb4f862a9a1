"""Safe image decoding shared by every stage (data, training, inference, lesion, web).

``load_rgb`` turns a path, bytes or a binary file object into an ``HxWx3`` ``uint8``
RGB array, the way a dermoscope image should be seen: EXIF orientation applied,
first frame of animations, any Pillow mode (palette, alpha, grayscale, 16-bit,
float, CMYK) converted to 8-bit RGB. Every failure is an ``ImageError`` whose
message names the source.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from melascan.errors import DataError, ImageError

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]

#: Formats we decode; anything else (SVG, PDF, HEIC...) is refused with a clear message.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO")
#: Refuse images above this many pixels (decompression bombs, absurd uploads).
MAX_PIXELS = 40_000_000
#: Refuse images whose shorter side is below this (1x1, 20000x1 ...).
MIN_SIDE_PX = 32


def describe(source: ImageSource) -> str:
    """A short name for ``source`` to use in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    name = getattr(source, "name", None) or getattr(source, "filename", None)
    return str(name) if name else "uploaded image"


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("the file is empty (0 bytes)")
        return Image.open(io.BytesIO(bytes(source)))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"no such file: {path}")
        if path.is_dir():
            raise ImageError(f"expected an image file, got a folder: {path}")
        if path.stat().st_size == 0:
            raise ImageError(f"the file is empty (0 bytes): {path}")
        return Image.open(path)
    return Image.open(source)


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow image to an ``HxWx3`` ``uint8`` RGB array.

    16-bit and float images are rescaled by their dynamic range (``I;16``: /257),
    alpha is composited on white, CMYK and palette images go through Pillow's converters.
    """
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def load_rgb(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    min_side_px: int = MIN_SIDE_PX,
    reduce_to_px: int | None = None,
) -> np.ndarray:
    """Decode ``source`` into an ``HxWx3`` ``uint8`` RGB array or raise ``ImageError``.

    ``reduce_to_px``: decode a JPEG at the smallest DCT scale (1/2, 1/4, 1/8) whose longer
    side is still at least this many pixels, so a 40-megapixel photo never exists in
    memory at full size. Other formats decode at full size (bounded by ``max_pixels``).
    """
    name = describe(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(source)
            if img.format not in SUPPORTED_FORMATS:
                raise ImageError(
                    f"{name}: unsupported image format {img.format or 'unknown'}; "
                    "use JPEG, PNG, WebP, BMP, TIFF or GIF"
                )
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: image too large ({width}x{height} px); the limit is "
                    f"{max_pixels // 1_000_000} megapixels"
                )
            if min(width, height) < min_side_px:
                raise ImageError(
                    f"{name}: image too small ({width}x{height} px); each side must be "
                    f"at least {min_side_px} px"
                )
            img.seek(0)
            if reduce_to_px and img.format in ("JPEG", "MPO") and max(width, height) > reduce_to_px:
                scale = reduce_to_px / max(width, height)
                img.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))
            img.load()
            return to_rgb_array(img)
    except ImageError as exc:
        if name in str(exc):
            raise
        raise ImageError(f"{name}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (or a format we cannot read)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(f"{name}: image too large (possible decompression bomb)") from None
    except PermissionError as exc:
        raise ImageError(f"{name}: cannot read the file ({exc.strerror})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: the image is corrupt or truncated ({exc})") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file without decoding its pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None


#: Files a folder walk picks up (by suffix, case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden files and folders skipped), sorted
    by their path relative to ``folder``."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def resolve_inputs(source: str | os.PathLike) -> list[Path]:
    """An image file -> ``[file]``; a folder -> its images. ``DataError`` when there is nothing."""
    path = Path(source)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise DataError(f"{path}: no image files found (looked for {', '.join(IMAGE_SUFFIXES)})")
        return images
    if path.is_file():
        return [path]
    raise DataError(f"no such file or folder: {path}")
