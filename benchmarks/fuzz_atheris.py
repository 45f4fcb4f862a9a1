"""Coverage-guided fuzzing of decode -> classify -> lesion analysis with atheris (libFuzzer).

Optional, not part of the test suite (the suite's bounded fuzzing is Hypothesis, in
tests/hardening/test_hardening_fuzz.py). Needs ``pip install atheris`` (Linux/macOS wheels).

    .venv/bin/python benchmarks/fuzz_atheris.py -max_total_time=300            # 5 minutes
    .venv/bin/python benchmarks/fuzz_atheris.py -atheris_runs=20000 CORPUS_DIR  # keep the corpus

Pillow's Python plugins (the header parsers of every format) and ``melascan.imageio``,
``melascan.lesion`` are instrumented for coverage. Any exception other than
``ImageError``/``MelascanError`` is a finding: libFuzzer stops and writes the input to
``crash-<sha1>`` in the working folder (reproduce: ``fuzz_atheris.py crash-<sha1>``).
Without a corpus folder, a seed corpus of small valid files of each accepted format is
written to a temporary folder. Arguments starting with ``-`` go to libFuzzer
(``-max_len`` defaults to 65536 here).
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    sys.exit("atheris is not installed: .venv/bin/pip install atheris")

with atheris.instrument_imports(include=["PIL", "melascan"]):
    import numpy as np
    from PIL import Image

    from melascan.errors import MelascanError
    from melascan.imageio import load_rgb
    from melascan.inference import Classifier
    from melascan.lesion import analyze_lesion, make_overlays

CLASSIFIER = Classifier.default()


def seed_corpus(folder: Path) -> None:
    """Small valid files (96x80 lesion-like picture) in every accepted format and mode."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:80, 0:96]
    spot = ((xx - 48) ** 2 / 900 + (yy - 40) ** 2 / 500) < 1
    rgb = np.where(spot[..., None], [110, 70, 50], [220, 180, 160]).astype(np.float64)
    img = Image.fromarray(np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8))
    variants = {
        "rgb.jpg": (img, "JPEG", {"quality": 85}),
        "progressive.jpg": (img, "JPEG", {"progressive": True}),
        "cmyk.jpg": (img.convert("CMYK"), "JPEG", {}),
        "rgb.png": (img, "PNG", {}),
        "rgba.png": (img.convert("RGBA"), "PNG", {}),
        "palette.png": (img.convert("P"), "PNG", {}),
        "gray16.png": (Image.fromarray((np.asarray(img.convert("L"), np.uint16) * 257)), "PNG", {}),
        "anim.gif": (img, "GIF", {"save_all": True, "append_images": [img.convert("L").convert("RGB")]}),
        "rgb.webp": (img, "WEBP", {"quality": 80}),
        "rgb.tiff": (img, "TIFF", {}),
        "rgb.bmp": (img, "BMP", {}),
    }
    for name, (image, fmt, params) in variants.items():
        buf = io.BytesIO()
        image.save(buf, fmt, **params)
        (folder / name).write_bytes(buf.getvalue())


def test_one_input(data: bytes) -> None:
    """The property: documented errors only; accepted images give well-formed results."""
    try:
        rgb = load_rgb(data)
    except MelascanError:
        return
    prediction = CLASSIFIER.predict(rgb, with_cam=True)
    if not 0.0 <= prediction.probability <= 1.0:
        raise AssertionError(f"probability {prediction.probability}")
    analysis = analyze_lesion(rgb)
    if analysis.mask.shape != rgb.shape[:2]:
        raise AssertionError("mask shape")
    make_overlays(rgb, analysis)


def main() -> None:
    args = list(sys.argv)
    if not any(a.startswith("-max_len") for a in args):
        args.append("-max_len=65536")
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus folder or crash file given
        seeds = Path(tempfile.mkdtemp(prefix="melascan-fuzz-corpus-"))
        seed_corpus(seeds)
        args.append(str(seeds))
        print(f"seed corpus: {seeds}", file=sys.stderr)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
