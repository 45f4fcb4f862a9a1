"""Issue 12's last parts: exposure warnings, the heatmap outside the lesion, the image scale and
the re-check reminder (each in English and Korean)."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from icalendar import Calendar
from PIL import Image

from melascan.inference.cam import cam_inside_fraction
from melascan.web.cam import mostly_outside
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
    assert exposure_warnings(lesion) == ["too_dark"]
    assert exposure_warnings(dataclasses.replace(lesion, quality=["too_dark"])) == []
    assert exposure_warnings(analyze_lesion(rgb)) == []


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


# --- 3. the image scale -----------------------------------------------------------------------


def test_a_scale_entered_with_the_upload_gives_the_diameter_in_mm(client, upload):
    raw = SAMPLES[4].read_bytes()
    plain = upload(client, raw, "plain.jpg").json
    scaled = upload(client, raw, "scaled.jpg", mm_per_px="0,02").json  # a decimal comma is fine
    ruler = upload(client, raw, "ruler.jpg", ruler_mm="10", ruler_px="500").json
    assert plain["image"]["mm_per_px"] is None and plain["lesion"]["diameter_mm"] is None
    assert scaled["image"]["mm_per_px"] == ruler["image"]["mm_per_px"] == pytest.approx(0.02)
    # the file is analysed at its own size here (300 px): mm = px * scale
    assert scaled["lesion"]["diameter_mm"] == pytest.approx(scaled["lesion"]["diameter_px"] * 0.02, rel=1e-3)
    assert ruler["lesion"]["diameter_mm"] == pytest.approx(scaled["lesion"]["diameter_mm"])
    page = client.get(scaled["links"]["page"]).get_data(as_text=True)
    assert f"{scaled['lesion']['diameter_mm']:.1f} mm" in page and "0.02 mm per pixel" in page
    # compared in mm only when both photos have a scale
    both = client.get(f"/history/compare?a={scaled['id']}&b={ruler['id']}").get_data(as_text=True)
    assert "Diameter (mm)" in both and 'id="diameter-note"' not in both
    mixed = client.get(f"/history/compare?a={plain['id']}&b={scaled['id']}").get_data(as_text=True)
    assert "Diameter (px)" in mixed and "cannot be compared across photos" in mixed


def test_the_scale_is_measured_on_the_file_as_uploaded_even_when_analysed_smaller(client, upload):
    big = Image.open(SAMPLES[4]).convert("RGB").resize((2400, 2400), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    big.save(out, "PNG")
    data = upload(client, out.getvalue(), "big.png", mm_per_px="0.0025").json
    assert data["image"]["analysis_width"] == 1024
    # 2400 px at 0.0025 mm = 6 mm wide picture: the same lesion as at 300 px and 0.02 mm
    small = upload(client, SAMPLES[4].read_bytes(), "small.jpg", mm_per_px="0.02").json
    assert data["lesion"]["diameter_mm"] == pytest.approx(small["lesion"]["diameter_mm"], rel=0.1)


def test_the_scale_on_the_lesion_page_and_in_the_pdf(client, upload, tmp_path):
    import shutil
    import subprocess

    data = upload(client, SAMPLES[4].read_bytes(), "spot.jpg", ruler_mm="10", ruler_px="500").json
    assert client.post(f"/history/{data['id']}/lesion", data={"name": "Back"}).status_code == 303
    row = client.get(data["links"]["self"]).json
    lesion_page = client.get(f"/history/lesions/{row['tracked_lesion']['id']}").get_data(as_text=True)
    assert f"{data['lesion']['diameter_mm']:.1f} mm" in lesion_page
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed; `make test` installs it")
    (tmp_path / "r.pdf").write_bytes(client.get(data["links"]["pdf"]).data)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert f"{data['lesion']['diameter_mm']:.1f} mm" in text and "0.02 mm per pixel" in text


@pytest.mark.parametrize("form, key", [
    ({"mm_per_px": "abc"}, "error.invalid_scale.not_number"),
    ({"mm_per_px": "-1"}, "error.invalid_scale.not_positive"),
    ({"mm_per_px": "nan"}, "error.invalid_scale.not_positive"),
    ({"mm_per_px": "5"}, "error.invalid_scale.range"),
    ({"ruler_mm": "10"}, "error.invalid_scale.ruler_pair"),
    ({"mm_per_px": "0.02", "ruler_mm": "10", "ruler_px": "500"}, "error.invalid_scale.both"),
])
def test_an_unusable_scale_is_refused_in_the_readers_language(client, upload, lesion_jpeg, form, key):
    response = upload(client, lesion_jpeg, **form)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_scale"
    english = translate(key, "en").split("{")[0]
    assert english[:20] in response.json["error"]["message"]
    response = upload(korean(client), lesion_jpeg, **form)
    assert HANGUL.search(response.json["error"]["message"]) and english[:20] not in response.json["error"]["message"]
    assert client.get("/api/v1/analyses").json["count"] == 0  # nothing stored


# --- 4. the re-check reminder -----------------------------------------------------------------


def test_a_tracked_lesion_offers_a_reminder_that_calendars_read(app, client, upload, lesion_jpeg):
    aid = upload(client, lesion_jpeg).json["id"]
    client.post(f"/history/{aid}/lesion", data={"name": "Left shin"})
    lesion_id = client.get(f"/api/v1/analyses/{aid}").json["tracked_lesion"]["id"]
    page = client.get(f"/history/lesions/{lesion_id}").get_data(as_text=True)
    assert 'id="reminder"' in page and f"/history/lesions/{lesion_id}/reminder.ics" in page
    for weeks, query in ((12, ""), (4, "?weeks=4")):
        today = datetime.now(timezone.utc).date()
        response = client.get(f"/history/lesions/{lesion_id}/reminder.ics{query}")
        assert response.status_code == 200 and response.mimetype == "text/calendar"
        assert "attachment" in response.headers["Content-Disposition"]
        [event] = Calendar.from_ical(response.data).walk("VEVENT")
        assert event.decoded("dtstart") in (today + timedelta(weeks=weeks), datetime.now(timezone.utc).date()
                                            + timedelta(weeks=weeks))
        assert "Left shin" in str(event["summary"]) and event.get("uid")
        text = response.data.decode()
        assert "%" not in text and "melanoma" not in text.lower()  # the name and the date, no results
    for bad in ("0", "53", "abc", "-3"):
        refused = client.get(f"/history/lesions/{lesion_id}/reminder.ics?weeks={bad}")
        assert refused.status_code == 400 and "between 1 and 52 weeks" in refused.get_data(as_text=True)
    assert client.get("/history/lesions/nope/reminder.ics").status_code == 404
    assert app.test_client().get(f"/history/lesions/{lesion_id}/reminder.ics").status_code == 404  # another browser
    ko = korean(client).get(f"/history/lesions/{lesion_id}/reminder.ics")
    [event] = Calendar.from_ical(ko.data).walk("VEVENT")
    assert HANGUL.search(str(event["summary"]))
    refused = client.get(f"/history/lesions/{lesion_id}/reminder.ics?weeks=99").get_data(as_text=True)
    assert translate("error.bad_request.weeks", "ko", low=1, high=52) in refused
