"""User-given names (uploaded file names, lesion names) made safe to store and show.

Removed: control characters (C0, C1, NUL, which PostgreSQL refuses in text), bidi
controls (LRE/RLE/PDF/LRO/RLO, isolates, marks: they can make ``gpj.exe`` read as
``exe.jpg``) and other invisible format characters; whitespace runs become one space.
The result is capped at ``max_len`` characters.
"""

from __future__ import annotations

import re
import unicodedata

LESION_NAME_MAX = 80
FILENAME_MAX = 255

_SPACES = re.compile(r"\s+")


def clean_name(value: str | None, max_len: int) -> str:
    """``value`` without control/format characters, whitespace collapsed, at most ``max_len``."""
    text = unicodedata.normalize("NFC", value or "")
    kept = "".join(" " if ch in "\t\n\r\x0b\x0c" else ch for ch in text
                   if ch in "\t\n\r\x0b\x0c" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    return _SPACES.sub(" ", kept).strip()[:max_len].strip()
