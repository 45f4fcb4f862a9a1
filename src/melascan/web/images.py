"""Image helpers of the web analysis: decode an upload, shrink, encode, read the file's header."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from melascan.errors import ImageError
from melascan.imageio import load_rgb

#: Large JPEGs are decoded at a reduced scale, at least this many pixels on the longer side.
DECODE_MIN_SIDE_PX = 2048


def decode_upload(image_bytes: bytes, filename: str) -> np.ndarray:
    """Decode an upload with ``melascan.imageio.load_rgb``; ``ImageError`` names the file."""
    if not image_bytes:
        raise ImageError(f"{filename}: the file is empty (0 bytes)")
    source = io.BytesIO(image_bytes)
    source.name = filename
    return load_rgb(source, reduce_to_px=DECODE_MIN_SIDE_PX)


def shrink(rgb: np.ndarray, max_side_px: int) -> np.ndarray:
    """``rgb`` scaled down (never up) so its longer side is at most ``max_side_px``."""
    h, w = rgb.shape[:2]
    scale = max_side_px / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def encode(rgb: np.ndarray, fmt: str = "PNG", quality: int = 90) -> tuple[str, bytes]:
    """``(mime, bytes)`` of ``rgb`` encoded as PNG or JPEG, without metadata."""
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]).astype(np.uint8), "RGB")
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality, optimize=True)
        return "image/jpeg", buf.getvalue()
    # Level 1: ~3x faster than the default 6 for ~10 % larger overlays (docs/benchmarks.md).
    img.save(buf, "PNG", optimize=False, compress_level=1)
    return "image/png", buf.getvalue()


def source_header(image_bytes: bytes) -> tuple[str | None, int | None]:
    """``(format, longer side in px)`` of the file as stored (``JPEG``, 4000 ...), read from the
    header only; ``(None, None)`` if Pillow cannot tell (``load_rgb`` already accepted the bytes)."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as img:
            return img.format, max(img.size)
    except Exception:  # only a hint: the decoded image is what counts
        return None, None
