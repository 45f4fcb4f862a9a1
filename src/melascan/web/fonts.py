"""The bundled Korean web font, so Hangul never renders as empty boxes.

``static/fonts/melascan-hangul{,-bold}.woff`` (web pages) and ``melascan-hangul-full.ttf`` (the
PDF report, every Hangul syllable) are subsets of NanumGothic (NAVER, SIL Open Font
License 1.1, ``static/fonts/OFL.txt``) holding only the characters the app's texts use. The OFL
reserves the name "Nanum" for the original, so the subsets are renamed "MelaScan Hangul".
The CSS loads them for Hangul only (``unicode-range``); other scripts keep the system font.

Regenerate after changing a Korean text (fontTools comes with matplotlib; the TTFs with
Debian's ``fonts-nanum``)::

    python -m melascan.web.fonts /usr/share/fonts/truetype/nanum/NanumGothic.ttf \\
        /usr/share/fonts/truetype/nanum/NanumGothicBold.ttf
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FONT_DIR = HERE / "static" / "fonts"
FAMILY = "MelaScan Hangul"
#: For the PDF report: every Hangul syllable (a lesion name can hold any), TrueType (fpdf2).
PDF_FONT = "melascan-hangul-full.ttf"
#: Hangul Jamo, compatibility Jamo and syllables: what the CSS loads the font for.
HANGUL_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))


def used_text() -> str:
    """Every character of the translations and templates (sorted, unique)."""
    text = "".join(p.read_text(encoding="utf-8") for folder in ("translations", "templates")
                   for p in sorted((HERE / folder).rglob("*")) if p.is_file())
    return "".join(sorted(set(text)))


def hangul(text: str) -> str:
    return "".join(c for c in text if any(lo <= ord(c) <= hi for lo, hi in HANGUL_RANGES))


def subset_font(src: str | Path, out: str | Path, text: str, style: str = "Regular", flavor: str | None = "woff") -> Path:
    """Write a subset of ``src`` (WOFF, or TrueType with ``flavor=None``) with the glyphs of ``text``,
    renamed to ``FAMILY``."""
    from fontTools import subset

    options = subset.Options()
    options.flavor = flavor
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # copyright, names, version, licence
    font = subset.load_font(str(src), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    names = {1: FAMILY, 3: f"{FAMILY} {style} (subset)", 4: f"{FAMILY} {style}",
             6: f"{FAMILY.replace(' ', '')}-{style}", 2: style}
    for record in font["name"].names:
        if record.nameID in names:
            record.string = names[record.nameID]
    subset.save_font(font, str(out), options)
    return Path(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    FONT_DIR.mkdir(parents=True, exist_ok=True)
    text = hangul(used_text())
    for src, style, name in ((argv[0], "Regular", "melascan-hangul.woff"), (argv[1], "Bold", "melascan-hangul-bold.woff")):
        out = subset_font(src, FONT_DIR / name, text, style)
        print(f"{out}: {len(text)} Hangul characters, {out.stat().st_size / 1024:.0f} KiB")
    # every Hangul character, plus Latin-1 and punctuation: fpdf2 may set digits next to Hangul in this font
    every = "".join(chr(c) for lo, hi in (*HANGUL_RANGES, (0x20, 0x7E), (0xA0, 0xFF), (0x2010, 0x2030))
                    for c in range(lo, hi + 1))
    out = subset_font(argv[0], FONT_DIR / PDF_FONT, every, "Regular", flavor=None)
    print(f"{out}: every Hangul character, {out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
