"""Checks on an uploaded file before it reaches the image decoder.

Everything wrong with an upload becomes an ``UploadError`` with an HTTP status, a
stable ``code`` (used for the JSON error and the translated page) and a message that
names the file. Image decoding itself is ``melascan.imageio.load_rgb`` (via
``analysis.decode_upload``), whose ``ImageError`` the views turn into a 400.
"""

from __future__ import annotations

import os

from flask import Request

from melascan.web.errors import RequestError
from melascan.web.names import FILENAME_MAX, clean_name

#: File extensions accepted from the file picker / API (lower case, with the dot).
#: A name without an extension is accepted (the content decides).
ALLOWED_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mpo")
FIELD = "image"


class UploadError(RequestError):
    """A request that does not carry a usable image file."""


def clean_filename(name: str | None) -> str:
    """The base name of an uploaded file (no folders, no control characters), at most 255 characters."""
    name = clean_name(os.path.basename((name or "").replace("\\", "/")), 10 * FILENAME_MAX)
    stem, ext = os.path.splitext(name)
    if len(name) > FILENAME_MAX:  # shorten the stem, keep the extension
        name = stem[: FILENAME_MAX - len(ext)] + ext if len(ext) <= 16 else name[:FILENAME_MAX]
    return name or "upload"


def read_upload(request: Request, field: str = FIELD) -> tuple[bytes, str]:
    """``(bytes, filename)`` of the uploaded ``field`` or ``UploadError``.

    Refuses: a body that is not ``multipart/form-data`` (415), a missing or empty
    field (400), a file name with a non-image extension (400). The size limit
    (``MAX_CONTENT_LENGTH``) is enforced by Flask before this runs (413).
    """
    if request.mimetype != "multipart/form-data":
        raise UploadError("unsupported_media_type", 415, field=field, got=request.mimetype or "-")
    # A page may send two inputs named "image" (file picker and camera); use the one
    # that holds a file. A part without a file name is a picker left empty.
    parts = request.files.getlist(field)
    chosen = [p for p in parts if p.filename] or parts
    if not chosen:
        raise UploadError("missing_file", field=field)
    storage = chosen[0]
    filename = clean_filename(storage.filename)
    ext = os.path.splitext(filename)[1].lower()
    if ext and ext not in ALLOWED_EXTENSIONS:
        raise UploadError("unsupported_extension", filename=filename, ext=ext)
    data = storage.read()
    if not data and not storage.filename:
        raise UploadError("missing_file", key="error.missing_file.none_chosen", field=field)
    if not data:
        raise UploadError("empty_file", filename=filename)
    return data, filename
