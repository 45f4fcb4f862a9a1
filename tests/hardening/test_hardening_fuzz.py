"""Fuzzing the decode-and-analyse path with Hypothesis (bounded: 60 examples each).

No exception may escape other than the documented input errors (``ImageError`` and
other ``MelascanError``), and whatever is accepted gives a well-formed result:
a probability in [0, 1], a mask of the image's size, JSON-safe features.

Inputs: mutated valid JPEG/PNG/GIF/WebP/TIFF/BMP bytes (flipped bytes, truncation, inserted
junk), random bytes behind real magic numbers, and random arrays (valid RGB arrays must
always be analysed; wrong dtypes/shapes must be refused with ``ImageError``).
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from melascan.errors import ImageError, MelascanError
from melascan.imageio import load_rgb
from melascan.inference import Classifier
from melascan.lesion import analyze_lesion, make_overlays
from melascan.web.analysis import run_analysis

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seed_images() -> dict[str, bytes]:
    """Small (96x80) valid files of every accepted format, from a lesion-like picture."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:80, 0:96]
    spot = ((xx - 48) ** 2 / 900 + (yy - 40) ** 2 / 500) < 1
    rgb = np.where(spot[..., None], [110, 70, 50], [220, 180, 160]).astype(np.float64)
    rgb = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb)
    out = {}
    for fmt, params in (("JPEG", {"quality": 85}), ("PNG", {}), ("GIF", {}), ("WEBP", {"quality": 80}),
                        ("TIFF", {}), ("BMP", {})):  # fmt: skip
        buf = io.BytesIO()
        img.save(buf, fmt, **params)
        out[fmt] = buf.getvalue()
    return out


SEEDS = _seed_images()
MAGIC = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"II*\x00",
         b"MM\x00*", b"BM", b"\x00\x00\x00\x0cjP  ", b"%!PS-Adobe-3.0 EPSF", b"<svg", b""]  # fmt: skip


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.default()


@st.composite
def mutated_image(draw) -> bytes:
    """A valid small image file with a few bytes flipped, maybe truncated, maybe junk inserted."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 12))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def check_pipeline(clf: Classifier, data: bytes) -> None:
    """decode -> classify (+CAM) -> lesion analysis -> overlays; only documented errors."""
    try:
        rgb = load_rgb(data)
    except ImageError:
        event("refused by the decoder")
        return
    event("decoded and analysed")
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    check_array(clf, rgb)


def check_array(clf: Classifier, rgb: np.ndarray) -> None:
    prediction = clf.predict(rgb, with_cam=True)
    assert math.isfinite(prediction.probability) and 0.0 <= prediction.probability <= 1.0
    assert prediction.cam.shape == rgb.shape[:2] and np.isfinite(prediction.cam).all()
    analysis = analyze_lesion(rgb)
    assert analysis.mask.shape == rgb.shape[:2]
    json.dumps(analysis.to_dict(), allow_nan=False)
    for overlay in make_overlays(rgb, analysis).values():
        assert overlay.shape == rgb.shape and overlay.dtype == np.uint8


@FUZZ
@given(data=mutated_image())
def test_mutated_images(clf, data):
    check_pipeline(clf, data)


@FUZZ
@given(magic=st.sampled_from(MAGIC), tail=st.binary(max_size=2048))
def test_random_bytes_behind_magic_numbers(clf, magic, tail):
    check_pipeline(clf, magic + tail)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_image())
def test_mutated_images_through_the_web_analysis(data):
    """The web app's glue (decode, classify, lesion, overlays, image encoding)."""
    try:
        result = run_analysis(data, "fuzz.png")
    except MelascanError:
        event("refused")
        return
    event("analysed")
    json.dumps({k: v for k, v in result.items() if k != "images"}, allow_nan=False)
    if result["risk"]["level"] == "out_of_scope":  # not a skin spot: no outline or heatmap is drawn
        assert {"original", "thumbnail"} == set(result["images"])
    else:
        assert {"original", "thumbnail", "heatmap", "contour"} <= set(result["images"])


@FUZZ
@given(rgb=hnp.arrays(np.uint8, st.tuples(st.integers(16, 120), st.integers(16, 120), st.just(3)),
                      elements=st.integers(0, 255)))  # fmt: skip
def test_random_rgb_arrays_are_always_analysed(clf, rgb):
    check_array(clf, rgb)


@FUZZ
@given(
    array=hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.int16, np.uint16, np.bool_, np.int64]),
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=40),
    )
    | hnp.arrays(np.uint8, st.one_of(st.tuples(st.integers(1, 40), st.integers(1, 40)),
                                     st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 2, 4])),
                                     st.tuples(st.integers(1, 15), st.integers(1, 15), st.just(3))))  # fmt: skip
)
def test_wrong_arrays_are_refused_with_image_error(clf, array):
    """Arrays that are not HxWx3 uint8 (or too small for lesion analysis) are refused."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        with pytest.raises(ImageError):
            clf.predict(array)
    with pytest.raises(ImageError):
        analyze_lesion(array)
