"""Page flows: form upload, samples, result page, lesions over time, compare, delete."""

from __future__ import annotations

import io
import re

import pytest

from markupsafe import escape

from melascan.web.i18n import translate as _translate


@pytest.fixture
def database_url(any_database):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_database


def translate(key: str, lang: str) -> str:
    """The translated text as it appears in HTML (escaped)."""
    return str(escape(_translate(key, lang)))


def form_upload(client, data: bytes, filename: str = "spot.jpg", **form):
    payload = {"image": (io.BytesIO(data), filename), **form}
    return client.post("/analyze", data=payload, content_type="multipart/form-data")


def analysis_id(response) -> str:
    return re.search(r"/results/([\w-]+)$", response.headers["Location"]).group(1)


def test_form_upload_redirects_to_a_complete_result_page(client, lesion_jpeg):
    response = form_upload(client, lesion_jpeg)
    assert response.status_code == 303
    aid = analysis_id(response)
    html = client.get(f"/results/{aid}").get_data(as_text=True)
    data = client.get(f"/api/v1/analyses/{aid}").json
    level = data["risk"]["level"]
    # the headline (what to do) comes first, in the words of the level
    assert html.index('id="headline"') < html.index('id="probability"') < html.index('id="features"')
    assert translate(f"result.headline.{level}", "en") in html
    assert 'id="probability-value"' in html and "%" in html
    assert translate("result.dermatologist.title", "en") in html
    for kind in ("original", "contour", "heatmap"):
        assert f"/results/{aid}/images/{kind}" in html
    assert 'data-feature="tds"' in html and 'data-feature="asymmetry"' in html
    assert f"/results/{aid}/report.pdf" in html and f"/results/{aid}/fhir.json" in html
    # the benign look-alikes the card measured are listed beside the probability
    assert data["model"]["look_alikes"] and 'id="look-alikes"' in html
    assert all(f'data-diagnosis="{la["diagnosis"]}"' in html for la in data["model"]["look_alikes"])


def test_two_form_inputs_named_image_use_the_one_with_a_file(client, lesion_jpeg):
    payload = {"image": [(io.BytesIO(b""), ""), (io.BytesIO(lesion_jpeg), "camera.jpg")]}
    response = client.post("/analyze", data=payload, content_type="multipart/form-data")
    assert response.status_code == 303


def test_sample_analysis(client):
    response = client.post("/samples/synthetic_malignant")
    assert response.status_code == 303
    data = client.get(f"/api/v1/analyses/{analysis_id(response)}").json
    assert data["filename"] == "synthetic_malignant.jpg"
    assert data["sample"]["label"] == "malignant"
    html = client.get(f"/results/{analysis_id(response)}").get_data(as_text=True)
    known = translate("sample.known", "en").split("{")[0]
    assert 'id="sample-truth"' in html and known in html and translate("sample.label.malignant", "en") in html
    assert translate(f"result.advice.{data['risk']['level']}", "en") not in html  # no advice for a demo image


def test_suspicious_and_benign_variants_render(app, client, lesion_jpeg):
    """Both of the seed's result variants: risk guidance first, or features first."""
    from melascan.web import db

    aid = analysis_id(form_upload(client, lesion_jpeg))
    for level, probability in (("high", 0.9), ("moderate", 0.3), ("low", 0.02), ("unknown", 0.02)):
        with app.app_context():
            row = db.session().get(db.Analysis, aid)
            result = dict(row.result)
            result["risk"] = {**result["risk"], "level": level, "suspicious": level in ("high", "moderate"),
                              "quality_limited": level == "unknown",
                              "blocking_warnings": ["blurry"] if level == "unknown" else []}
            result["classification"] = {**result["classification"], "probability": probability}
            row.result = result
            db.session().commit()
        html = client.get(f"/results/{aid}").get_data(as_text=True)
        assert f'data-level="{level}"' in html
        assert translate(f"result.headline.{level}", "en") in html
        assert translate(f"result.advice.{level}", "en") in html
        if level == "unknown":
            assert translate("warning.blurry", "en") in html
        assert translate("result.dermatologist.text", "en") in html


def test_name_a_lesion_add_a_later_image_and_compare(client, lesion_jpeg, make_lesion):
    first = analysis_id(form_upload(client, lesion_jpeg, "left-shoulder-jan.jpg"))
    response = client.post(f"/history/{first}/lesion", data={"name": "Left shoulder"})
    assert response.status_code == 303
    data = client.get(f"/api/v1/analyses/{first}").json
    lesion_id = data["tracked_lesion"]["id"]
    assert data["tracked_lesion"]["name"] == "Left shoulder"

    # a later image of the same lesion, through the lesion page's form
    second = analysis_id(form_upload(client, make_lesion(seed=5, radius=0.33), "left-shoulder-jun.jpg",
                                     lesion_id=lesion_id))
    assert client.get(f"/api/v1/analyses/{second}").json["tracked_lesion"]["id"] == lesion_id

    page = client.get(f"/history/lesions/{lesion_id}").get_data(as_text=True)
    assert "Left shoulder" in page and '<svg class="chart"' in page
    assert page.count("<polyline") >= 1 and 'id="side-by-side"' in page
    assert f'data-analysis="{first}"' in page and f'data-analysis="{second}"' in page

    compare = client.get("/history/compare", query_string={"ids": [second, first]})
    assert compare.status_code == 200
    html = compare.get_data(as_text=True)
    assert 'id="compare-table"' in html and "TDS" in html
    assert html.index(f'data-analysis="{first}"') < html.index(f'data-analysis="{second}"')  # oldest left
    assert 'id="different-lesions"' not in html and "Left shoulder" in html
    one = client.get("/history/compare", query_string={"ids": [first]})  # one box ticked: back, with the reason
    assert one.status_code == 303 and one.headers["Location"].endswith("/history")
    assert translate("compare.choose_two", "en") in client.get("/history").get_data(as_text=True)
    # a photo of another spot: compared, but with a plain warning and no better/worse colours
    other = analysis_id(form_upload(client, make_lesion(seed=6), "back.jpg"))
    html = client.get("/history/compare", query_string={"ids": [first, other]}).get_data(as_text=True)
    assert 'id="different-lesions"' in html and "change-up" not in html and "change-down" not in html

    history = client.get("/history").get_data(as_text=True)
    assert "Left shoulder" in history and "left-shoulder-jan.jpg" in history
    assert f"/results/{first}/images/thumbnail" in history

    renamed = client.post(f"/history/lesions/{lesion_id}/rename", data={"name": "Shoulder (left)"})
    assert renamed.status_code == 303
    assert "Shoulder (left)" in client.get(f"/history/lesions/{lesion_id}").get_data(as_text=True)

    # moving to another lesion and removing from a lesion
    client.post(f"/history/{second}/lesion", data={"name": "Other"})
    assert client.get(f"/api/v1/analyses/{second}").json["tracked_lesion"]["name"] == "Other"
    client.post(f"/history/{second}/lesion", data={})
    assert client.get(f"/api/v1/analyses/{second}").json["tracked_lesion"] is None
    assert 'class="lesion-link">Other<' not in client.get("/history").get_data(as_text=True)  # empty lesion removed


def test_delete_one_and_all_through_the_pages(client, lesion_jpeg):
    first = analysis_id(form_upload(client, lesion_jpeg))
    second = analysis_id(form_upload(client, lesion_jpeg))
    assert client.post(f"/history/{first}/delete").status_code == 303
    assert client.get(f"/results/{first}").status_code == 404
    assert client.post("/history/delete-all").status_code == 400  # needs the confirmation box
    assert client.get(f"/results/{second}").status_code == 200
    assert client.post("/history/delete-all", data={"confirm": "yes"}).status_code == 303
    assert client.get(f"/results/{second}").status_code == 404
    assert 'id="history-empty"' in client.get("/history").get_data(as_text=True)


def test_history_is_in_korean_too(client, lesion_jpeg):
    aid = analysis_id(form_upload(client, lesion_jpeg))
    client.get("/lang/ko")
    html = client.get(f"/results/{aid}").get_data(as_text=True)
    assert '<html lang="ko">' in html and "피부과 전문의를 찾아야 할 때" in html


def test_colour_overlay_has_a_legend(client, lesion_jpeg):
    aid = analysis_id(form_upload(client, lesion_jpeg))
    html = client.get(f"/results/{aid}").get_data(as_text=True)
    assert f"/results/{aid}/images/colors" in html  # a real dermoscopy sample: the spot is found
    legend = html[html.index('id="colors-legend"'):]
    for name in ("white", "red", "light_brown", "dark_brown", "blue_gray", "black"):
        assert translate(f"color.{name}", "en") in legend
