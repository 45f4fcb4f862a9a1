"""A corpus of hostile and odd inputs, generated (nothing binary is committed), for the
hardening tests and ``benchmarks/hostile_corpus.py`` (which writes it to a folder).

Every ``Case`` says what must happen to it:

* ``api_status`` / ``api_code``: the answer of ``POST /api/v1/analyses`` (201 for an
  analysed image; 400/413/415 with ``{"error": {"code": api_code, ...}}`` otherwise);
* ``cli``: ``"accept"`` (``melascan predict FILE`` / ``melascan analyze FILE`` exit 0) or
  ``"reject"`` (exit 2, ``error: <file>: <reason>`` on stderr, no traceback), or ``None``
  when the case is about the HTTP request, not the file (wrong content type ...);
  ``analyze`` overrides it for ``melascan analyze`` (the lesion analysis refuses images
  more elongated than 10:1, which the classifier alone can score);
* ``message``: words the error message must contain (a *clear* message), lower case.

Valid but unusual images (16-bit, CMYK, palette, alpha, animations, EXIF rotation,
polyglots that are valid images ...) must be **analysed**, not refused. The files are
built from one committed sample image (``src/melascan/assets/samples/benign_1.jpg``) so
that accepted cases are real dermoscopy pictures.

``OUT_DIR/cases.json`` lists, per case: ``name``, ``file`` (on disk, a safe name),
``upload_name`` (the file name sent to the API: may hold unicode, ``../`` or markup),
``request``, the expectations and a ``note``.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

#: The server's default request limit (``MAX_CONTENT_LENGTH``, 15 MB); ``oversize_body`` exceeds it.
MAX_BODY_BYTES = 15 * 1024 * 1024

ACCEPT = (201, None)
INVALID = (400, "invalid_image")
BAD_EXT = (400, "unsupported_extension")


@dataclass(frozen=True)
class Case:
    """One hostile input and the outcome it must get."""

    name: str
    upload_name: str  # file name sent with the upload (may be hostile itself)
    data: bytes
    api_status: int
    api_code: str | None
    cli: str | None  # "accept" | "reject" | None (the case is about the HTTP request)
    message: tuple[str, ...] = ()  # words the error message must contain (lower case)
    request: str = "multipart"  # multipart | json | raw | urlencoded | wrong_field | lying_mime
    note: str = ""
    analyze: str | None = None  # outcome of ``melascan analyze`` when it differs from ``cli``

    def cli_outcome(self, command: str) -> str | None:
        """``"accept"``/``"reject"``/``None`` for ``melascan predict`` or ``melascan analyze``."""
        return self.analyze if command == "analyze" and self.analyze else self.cli

    @property
    def accepted(self) -> bool:
        return self.api_status == 201

    @property
    def disk_name(self) -> str:
        """A safe file name for the corpus folder (the suffix of ``upload_name`` kept)."""
        suffix = Path(self.upload_name.replace("\\", "/")).suffix
        safe_suffix = suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 6 else ""
        return f"{self.name}{safe_suffix}"


# --- building blocks ---------------------------------------------------------------------


def sample_rgb() -> np.ndarray:
    """The committed sample ``benign_1.jpg`` as an RGB array (300x300)."""
    path = Path(str(resources.files("melascan").joinpath("assets", "samples", "benign_1.jpg")))
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_by_hand(width: int, height: int, idat: bytes, *, bit_depth: int = 8, color_type: int = 0,
                extra: bytes = b"", iend: bool = True) -> bytes:  # fmt: skip
    """A PNG file with the given header and (already compressed) image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", idat)
    return out + (png_chunk(b"IEND", b"") if iend else b"")


def zero_rows_zlib(width: int, height: int) -> bytes:
    """zlib stream of ``height`` gray 8-bit PNG rows of zeros (filter byte + pixels), streamed."""
    comp = zlib.compressobj(9)
    row = bytes(width + 1)
    return b"".join(comp.compress(row) for _ in range(height)) + comp.flush()


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with the width/height of its first SOF segment rewritten."""
    data = bytearray(jpeg)
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise ValueError("no SOF marker")


def jpeg_scan_start(jpeg: bytes) -> int:
    """Offset of the entropy-coded data (just after the SOS segment)."""
    at = jpeg.find(b"\xff\xda")
    length = struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
    return at + 2 + length


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("payload.txt", "this ZIP rides on an image\n")
        zf.writestr("run.sh", "#!/bin/sh\necho pwned\n")
    return out.getvalue()


def gif_header(width: int, height: int) -> bytes:
    """A GIF89a header + global colour table (2 colours) for a ``width`` x ``height`` screen."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"


def bmp_header(width: int, height: int, bits: int = 24) -> bytes:
    """A BMP file header + BITMAPINFOHEADER (no pixel data)."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


# --- the cases ---------------------------------------------------------------------------


def build_cases() -> list[Case]:
    """Every case of the corpus (deterministic: fixed seeds)."""
    rng = np.random.default_rng(8)
    rgb = sample_rgb()
    img = Image.fromarray(rgb)
    jpeg = encode(img, "JPEG", quality=90)
    png = encode(img, "PNG")
    gray = img.convert("L")
    cases: list[Case] = []

    def accept(name: str, data: bytes, upload_name: str | None = None, note: str = "", **kw) -> None:
        cases.append(Case(name, upload_name or f"{name}.png", data, *ACCEPT, "accept", note=note, **kw))

    def reject(name: str, data: bytes, upload_name: str, message: tuple[str, ...], note: str = "",
               api: tuple[int, str] = INVALID, cli: str | None = "reject", **kw) -> None:  # fmt: skip
        cases.append(Case(name, upload_name, data, *api, cli, message=message, note=note, **kw))

    # -- not images at all --------------------------------------------------------------
    reject("zero_bytes", b"", "empty.jpg", ("empty",), api=(400, "empty_file"))
    reject("text_as_jpg", b"hello, this is not a picture\n" * 20, "notes.jpg", ("not an image",))
    reject("text_txt", b"just text\n", "notes.txt", (".txt",), api=BAD_EXT)
    reject("html_script_as_jpg", b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>",
           "page.jpg", ("not an image",))  # fmt: skip
    reject("html_file", b"<html><script>fetch('/api/v1/analyses',{method:'DELETE'})</script></html>", "page.html",
           (".html",), api=BAD_EXT)  # fmt: skip
    svg = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="300" height="300">'
           b'<script>alert(1)</script><circle cx="150" cy="150" r="80" fill="brown"/></svg>')  # fmt: skip
    reject("svg_script", svg, "lesion.svg", (".svg",), api=BAD_EXT)
    reject("svg_as_png", svg, "lesion.png", ("not an image",), note="SVG content behind an image extension")
    reject("random_bytes", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "noise.jpg", ("not an image",))
    reject("null_bytes", bytes(10000), "zeros.png", ("not an image",))
    reject("pdf_as_jpg", b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n", "scan.jpg",
           ("not an image",))  # fmt: skip
    reject("zip_as_jpg", zip_bytes(), "archive.jpg", ("not an image",))
    reject("exe_file", b"MZ\x90\x00" + bytes(200) + b"This program cannot be run in DOS mode", "setup.exe",
           (".exe",), api=BAD_EXT)  # fmt: skip
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 300 300\n%%EndComments\n"
           b"(%pipe%id) (w) file\nshowpage\n%%EOF\n")  # fmt: skip
    reject("eps_ghostscript_as_jpg", eps, "lesion.jpg", ("unsupported image format eps",),
           note="Pillow can open EPS (it would run Ghostscript to decode); refused before decoding")  # fmt: skip
    reject("ico_as_png", encode(img.resize((64, 64)), "ICO"), "icon.png", ("unsupported image format ico",))
    reject("ppm_as_jpg", encode(img, "PPM"), "photo.jpg", ("unsupported image format ppm",))

    # -- corrupt or truncated images ----------------------------------------------------
    reject("jpeg_truncated_half", jpeg[: len(jpeg) // 2], "half.jpg", ("corrupt or truncated",))
    reject("jpeg_header_only", jpeg[:300], "header.jpg", ("corrupt or truncated",))
    scan = jpeg_scan_start(jpeg)
    garbage = bytearray(jpeg)
    garbage[scan : scan + 2000] = rng.integers(0, 255, 2000, dtype=np.uint8).tobytes()
    accept("jpeg_corrupt_scan", bytes(garbage), "corrupt_scan.jpg",
           note="valid headers, 2000 random bytes of entropy-coded data: libjpeg decodes it with "
                "garbled pixels (as any viewer would); the analysis flags quality")  # fmt: skip
    no_huffman = jpeg.replace(b"\xff\xc4", b"\xff\xfe", 1)  # first DHT segment becomes a comment
    accept("jpeg_missing_huffman", no_huffman, "nohuff.jpg",
           note="a Huffman table removed: libjpeg falls back to the standard tables (Motion-JPEG rule)")  # fmt: skip
    reject("png_truncated", png[: len(png) // 2], "half.png", ("corrupt or truncated",))
    bad_crc = bytearray(png)
    idat = bad_crc.find(b"IDAT")
    bad_crc[idat + 100] ^= 0xFF
    reject("png_bad_crc", bytes(bad_crc), "crc.png", ("corrupt",), note="one IDAT byte flipped (CRC mismatch)")
    reject("png_zero_width", png_by_hand(0, 300, zero_rows_zlib(1, 1)), "zero.png", ("not an image",))
    reject("png_no_idat_data", png_by_hand(300, 300, b""), "empty_idat.png", ("corrupt or truncated",))
    gif = encode(img, "GIF")
    reject("gif_truncated", gif[: len(gif) // 2], "half.gif", ("corrupt or truncated",))
    reject("bmp_truncated", bmp_header(300, 300) + bytes(1000), "short.bmp", ("corrupt or truncated",))
    reject("tiff_truncated", encode(img, "TIFF")[:4000], "half.tiff", ("corrupt or truncated",))

    # -- bombs and extreme sizes --------------------------------------------------------
    reject("png_bomb_50000", png_by_hand(50000, 50000, zero_rows_zlib(50000, 2)), "bomb.png", ("too large",),
           note="PNG declaring 50000x50000 (2.5 gigapixels) with 100 kB of data")  # fmt: skip
    reject("png_bomb_8000_real", png_by_hand(8000, 8000, zero_rows_zlib(8000, 8000)), "bomb8k.png", ("too large",),
           note="a complete, valid 8000x8000 PNG (64 MP) compressed to ~60 kB: over the 40 MP limit")  # fmt: skip
    reject("gif_bomb_65535", gif_header(65535, 65535) + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
           "bomb.gif", ("too large",))  # fmt: skip
    reject("bmp_bomb", bmp_header(40000, 40000) + bytes(64), "bomb.bmp", ("too large",))
    reject("jpeg_header_60000", jpeg_with_size(jpeg, 60000, 60000), "giant.jpg", ("too large",),
           note="a JPEG whose SOF header declares 60000x60000")  # fmt: skip
    reject("tiny_1x1", encode(Image.new("RGB", (1, 1), (120, 80, 60)), "PNG"), "dot.png", ("too small",))
    reject("strip_20000x1", encode(Image.new("RGB", (20000, 1), (120, 80, 60)), "PNG"), "strip.png", ("too small",))
    reject("thin_31x400", encode(img.resize((31, 400)), "PNG"), "thin.png", ("too small",), note="one px under the limit")
    accept("small_32x32", encode(img.resize((32, 32)), "PNG"), note="the smallest accepted size")
    accept("wide_3000x300", encode(img.resize((3000, 300)), "JPEG", quality=90), "wide.jpg",
           note="10:1, the most elongated image the lesion analysis accepts")  # fmt: skip
    reject("panorama_2000x40", encode(img.resize((2000, 40)), "PNG"), "panorama.png", ("too elongated",),
           cli="accept", analyze="reject", note="50:1: the classifier scores it, the lesion analysis refuses it")  # fmt: skip
    reject("strip_12640x80_cmyk", encode(img.resize((12640, 80)).convert("CMYK"), "JPEG", quality=50), "strip.jpg",
           ("too elongated",), cli="accept", analyze="reject",
           note="found by atheris: 158:1 made the lesion analysis allocate > 2 GB (fixed: refused)")  # fmt: skip

    # -- valid but unusual images: must be analysed --------------------------------------
    gray16 = (np.asarray(gray, np.uint16) * 257).astype(np.uint16)
    accept("png_16bit_gray", encode(Image.fromarray(gray16), "PNG"), note="mode I;16")
    import cv2

    ok, rgb16 = cv2.imencode(".png", (rgb[:, :, ::-1].astype(np.uint16) * 257))
    accept("png_16bit_rgb", rgb16.tobytes(), note="48-bit RGB PNG")
    accept("jpeg_cmyk", encode(img.convert("CMYK"), "JPEG", quality=90), "cmyk.jpg")
    accept("tiff_cmyk", encode(img.convert("CMYK"), "TIFF"), "cmyk.tiff")
    accept("png_palette", encode(img.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "PNG"))
    pal = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    accept("png_palette_transparency", encode(pal, "PNG", transparency=0))
    rgba = img.copy()
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))))
    accept("png_rgba", encode(rgba, "PNG"), note="alpha gradient, composited on white")
    accept("png_gray_alpha", encode(rgba.convert("LA"), "PNG"))
    accept("png_1bit", encode(gray.point(lambda v: 255 if v > 128 else 0).convert("1"), "PNG"))
    accept("jpeg_grayscale", encode(gray, "JPEG", quality=90), "gray.jpg")
    accept("jpeg_progressive", encode(img, "JPEG", quality=90, progressive=True), "progressive.jpg")
    frames = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gray.convert("RGB")]
    accept("gif_animated", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
           "animated.gif", note="3 frames: the first is analysed")  # fmt: skip
    accept("tiff_multipage", encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]), "pages.tiff",
           note="3 pages: the first is analysed")  # fmt: skip
    accept("png_animated", encode(frames[0], "PNG", save_all=True, append_images=frames[1:]), "apng.png")
    accept("webp_lossy", encode(img, "WEBP", quality=80), "photo.webp")
    accept("webp_lossless_alpha", encode(rgba, "WEBP", lossless=True), "alpha.webp")
    accept("bmp_24bit", encode(img, "BMP"), "photo.bmp")
    accept("tiff_float32", encode(Image.fromarray(np.asarray(gray, np.float32) / 255.0), "TIFF"), "float.tiff",
           note="mode F, values 0-1, rescaled by their range")  # fmt: skip
    accept("tiff_int32", encode(Image.fromarray(np.asarray(gray, np.int32) * 1000), "TIFF"), "int.tiff")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    accept("jpeg_exif_rotated", encode(img.resize((300, 200)), "JPEG", quality=90, exif=exif), "rotated.jpg",
           note="EXIF orientation 6 on a 300x200 image: analysed as 200x300")  # fmt: skip
    big_exif = Image.Exif()
    big_exif[0x010E] = "A" * 60000  # ImageDescription: an APP1 segment of ~60 kB
    accept("jpeg_huge_exif", encode(img, "JPEG", quality=90, exif=big_exif), "exif.jpg")
    accept("jpeg_huge_icc", encode(img, "JPEG", quality=90, icc_profile=rng.bytes(1_000_000)), "icc.jpg",
           note="a 1 MB (random) ICC profile split over APP2 segments")  # fmt: skip
    accept("black_image", encode(Image.new("RGB", (300, 300)), "PNG"), note="nothing to see: quality warnings")
    accept("white_image", encode(Image.new("RGB", (300, 300), (255, 255, 255)), "JPEG"), "white.jpg")
    accept("noise_image", encode(Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)), "PNG"))
    near_limit = png_by_hand(6000, 6000, zero_rows_zlib(6000, 6000))
    accept("png_6000x6000_zeros", near_limit, note="36 MP (under the 40 MP limit) in ~40 kB: accepted; costly")

    # -- wrong or missing extension, polyglots ------------------------------------------
    accept("jpeg_named_png", jpeg, "actually_jpeg.png", note="the content decides, not the extension")
    accept("png_named_gif", png, "actually_png.gif")
    accept("no_extension", jpeg, "lesion")
    accept("uppercase_extension", jpeg, "LESION.JPG")
    reject("jpeg_named_exe", jpeg, "lesion.exe", (".exe",), api=BAD_EXT, cli="accept",
           note="the API refuses the extension; the CLI, given the file explicitly, reads its content")  # fmt: skip
    reject("png_named_txt", png, "lesion.txt", (".txt",), api=BAD_EXT, cli="accept")
    accept("jpeg_zip_polyglot", jpeg + zip_bytes(), "polyglot.jpg",
           note="a JPEG with a ZIP appended (opens as both); the stored copy is re-encoded without it")  # fmt: skip
    gif_js = gif[:-1] + b"\x21\xfe\x1c<script>alert(1)</script>\x00;" + b"\n/*js*/alert(document.cookie);"
    accept("gif_js_comment", gif_js, "polyglot.gif", note="script in a GIF comment and after the trailer")
    reject("gif_js_polyglot", b"GIF89a/*\x00\x00\x80\x00\x00*/=1;alert(document.cookie);//" + bytes(64), "poly.gif",
           ("not an image",), note="GIF header that is also JavaScript: no usable image")  # fmt: skip
    text_chunk = png_chunk(b"tEXt", b"Comment\x00<script>alert(1)</script><?php system($_GET['c']); ?>")
    accept("png_script_text_chunk", png[:33] + text_chunk + png[33:], "script.png")
    php = jpeg[:2] + b"\xff\xfe" + struct.pack(">H", 34) + b"<?php system($_GET['c']); ?>\x00\x00\x00\x00" + jpeg[2:]
    accept("jpeg_php_comment", php, "shell.php.jpg", note="a PHP web shell in a JPEG comment")
    ztxt_bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(bytes(50_000_000), 9))
    reject("png_ztxt_bomb", png[:33] + ztxt_bomb + png[33:], "textbomb.png", ("too large",),
           note="a zTXt chunk that inflates to 50 MB (Pillow's text limit is 1 MB)")  # fmt: skip

    # -- hostile file names (valid image) -----------------------------------------------
    accept("unicode_filename", jpeg, "병변 사진 ünïcödé 🩺.jpg")
    accept("traversal_filename", jpeg, "../../../../etc/passwd.jpg", note="stored as passwd.jpg, nowhere else")
    accept("windows_traversal_filename", png, "..\\..\\Windows\\System32\\evil.png")
    accept("markup_filename", jpeg, "<img src=x onerror=alert(1)>.jpg", note="escaped on every page")
    accept("long_filename", jpeg, "a" * 1000 + ".jpg", note="kept to 255 characters")
    accept("control_chars_filename", jpeg, "le\tsi\x07on\x1b[31m.jpg", note="tab, bell, ANSI escape")
    accept("null_byte_filename", jpeg, "lesion.php\x00.jpg")

    # -- the HTTP request itself ----------------------------------------------------------
    oversize = jpeg + bytes(MAX_BODY_BYTES + 1024 - len(jpeg))
    reject("oversize_body", oversize, "huge.jpg", ("larger than",), api=(413, "too_large"), cli="accept",
           note="a valid JPEG padded with zeros past 15 MB: the server refuses the body; the CLI reads the image")  # fmt: skip
    reject("json_body", jpeg, "lesion.jpg", ("multipart/form-data",), api=(415, "unsupported_media_type"), cli=None,
           request="json")  # fmt: skip
    reject("raw_image_body", jpeg, "lesion.jpg", ("multipart/form-data",), api=(415, "unsupported_media_type"),
           cli=None, request="raw")  # fmt: skip
    reject("urlencoded_body", jpeg, "lesion.jpg", ("multipart/form-data",), api=(415, "unsupported_media_type"),
           cli=None, request="urlencoded")  # fmt: skip
    reject("wrong_field_name", jpeg, "lesion.jpg", ("no file",), api=(400, "missing_file"), cli=None,
           request="wrong_field")  # fmt: skip
    cases.append(Case("lying_part_mime", "lesion.jpg", jpeg, *ACCEPT, None, request="lying_mime",
                      note="the part says text/html; the server looks at the bytes"))  # fmt: skip
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def write_corpus(folder: str | Path, cases: list[Case] | None = None) -> Path:
    """Write every case's bytes and ``cases.json`` into ``folder``; returns the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = build_cases() if cases is None else cases
    entries = []
    for case in cases:
        (folder / case.disk_name).write_bytes(case.data)
        entry = {k: v for k, v in asdict(case).items() if k != "data"}
        entries.append({"file": case.disk_name, "bytes": len(case.data), **entry})
    manifest = folder / "cases.json"
    manifest.write_text(json.dumps({"cases": entries}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest
