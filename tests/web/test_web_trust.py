"""Issue 12: exposure warnings and the heatmap outside the lesion (in English and Korean)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from melascan.web.cam import cam_inside_fraction, mostly_outside
from melascan.web.i18n import translate
from melascan.web.present import percent

HANGUL = re.compile(r"[\uac00-\ud7af]")
SAMPLES = sorted(Path(__file__).resolve().parents[2].joinpath("src", "melascan", "assets", "samples").glob("*.jpg"))


def scaled_brightness(data: bytes, factor: float) -> bytes:
    """The JPEG ``data`` with every pixel multiplied by ``factor`` (darker < 1 < brighter)."""
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(rgb * factor, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=92)
    return out.getvalue()


def korean(client):
    client.get("/lang/ko?next=/main")
    return client


# --- 1. under- and overexposure -------------------------------------------------------------


def test_an_underexposed_photo_is_told_to_retake_with_more_light(client, upload):
    dark = scaled_brightness(SAMPLES[0].read_bytes(), 0.25)  # benign_1 at a quarter of its light
    data = upload(client, dark, "dark.jpg").json
    assert "too_dark" in data["quality"]["warnings"] and not data["quality"]["can_judge"]
    assert data["risk"]["level"] in ("unknown", "moderate", "high")  # never reassured
    page = client.get(data["links"]["page"]).get_data(as_text=True)
    assert "retake it with more light" in page and 'data-warning="too_dark"' in page
    ko = korean(client).get(data["links"]["page"]).get_data(as_text=True)
    assert translate("warning.too_dark", "ko") in ko


def test_an_overexposed_photo_is_told_to_use_less_light_or_no_flash(client, upload):
    bright = scaled_brightness(SAMPLES[0].read_bytes(), 1.3)
    data = upload(client, bright, "bright.jpg").json
    assert "too_bright" in data["quality"]["warnings"]
    page = client.get(data["links"]["page"]).get_data(as_text=True)
    assert "less light or without the flash" in page and 'data-warning="too_bright"' in page


def test_the_exposure_rule_adds_only_what_the_lesion_analysis_did_not_report():
    from melascan.lesion import analyze_lesion
    from melascan.web.exposure import exposure_warnings

    rgb = np.asarray(Image.open(SAMPLES[0]).convert("RGB"))
    dim = (rgb * 0.25).astype(np.uint8)
    lesion = analyze_lesion(dim)
    assert "too_dark" not in lesion.quality  # the lesion stage's own limit (45) is lower than any real photo
    assert exposure_warnings(dim, lesion.quality, lesion.segmentation) == ["too_dark"]
    assert exposure_warnings(dim, ["too_dark"], lesion.segmentation) == []
    assert exposure_warnings(rgb, [], analyze_lesion(rgb).segmentation) == []


# --- 2. the heatmap outside the lesion --------------------------------------------------------


def test_cam_inside_fraction_is_the_share_of_heat_inside_the_mask():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    inside = np.where(mask, 1.0, 0.0).astype(np.float32)
    assert cam_inside_fraction(inside, mask) == 1.0
    assert cam_inside_fraction(1.0 - inside, mask) == 0.0
    half = np.zeros((40, 40), np.float32)
    half[15, 15] = half[0, 0] = 0.5
    assert cam_inside_fraction(half, mask) == pytest.approx(0.5)
    coarse = np.zeros((20, 20), np.float32)  # a smaller map is resized to the mask
    coarse[7:13, 7:13] = 1.0
    assert cam_inside_fraction(coarse, mask) == pytest.approx(1.0)
    assert cam_inside_fraction(np.zeros((40, 40)), mask) is None  # no heat
    assert cam_inside_fraction(inside, np.zeros((40, 40), bool)) is None  # no lesion
    assert mostly_outside(0.2) and not mostly_outside(0.5) and not mostly_outside(None)


def test_a_heatmap_mostly_outside_the_outline_is_called_out(client, upload):
    outside = next(p for p in SAMPLES if p.name == "malignant_4.jpg")  # the model looks at the hairs
    data = upload(client, outside.read_bytes(), outside.name).json
    assert data["classification"]["cam_mostly_outside"] and data["classification"]["cam_inside_lesion"] < 0.5
    page = client.get(data["links"]["page"]).get_data(as_text=True)
    assert 'id="heatmap-outside"' in page and "treat its number with extra caution" in page
    ko = korean(client).get(data["links"]["page"]).get_data(as_text=True)
    assert translate("image.heatmap.outside", "ko", pct=percent(data["classification"]["cam_inside_lesion"])) in ko
    client.get("/lang/en?next=/main")
    inside = next(p for p in SAMPLES if p.name == "malignant_3.jpg")
    data = upload(client, inside.read_bytes(), inside.name).json
    assert data["classification"]["cam_inside_lesion"] > 0.5 and not data["classification"]["cam_mostly_outside"]
    assert 'id="heatmap-outside"' not in client.get(data["links"]["page"]).get_data(as_text=True)
