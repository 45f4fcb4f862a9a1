"""An image that is not a dermoscopic photo of a skin spot gets 'please retake', never a probability."""

from __future__ import annotations

import io
import re

from markupsafe import escape
from PIL import Image

from melascan.evaluation.nonskin import printed_text
from melascan.web.i18n import translate


def _jpeg(rgb) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_printed_text_leads_with_retake_and_shows_no_probability_anywhere(client):
    response = client.post("/analyze", data={"image": (io.BytesIO(_jpeg(printed_text())), "page.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    aid = re.search(r"/results/([\w-]+)$", response.headers["Location"]).group(1)
    data = client.get(f"/api/v1/analyses/{aid}").json
    assert data["classification"]["in_scope"] is False and data["risk"]["level"] == "out_of_scope"
    html = client.get(f"/results/{aid}").get_data(as_text=True)
    headline = html[html.index('id="headline"'):html.index("</section>", html.index('id="headline"'))]
    assert str(escape(translate("result.headline.out_of_scope", "en"))) in headline and "retake" in headline
    assert 'id="probability"' not in html and 'id="probability-value"' not in html
    assert f"/results/{aid}/images/contour" not in html and f"/results/{aid}/images/heatmap" not in html
    history = client.get("/history").get_data(as_text=True)
    assert "page.jpg" in history and str(escape(translate("level.out_of_scope", "en"))) in history
    fhir = client.get(f"/results/{aid}/fhir.json").json
    probability = [e["resource"] for e in fhir["entry"] if e["resource"].get("id", "").endswith("")
                   and "dataAbsentReason" in e["resource"]]
    assert probability, "the probability observation says why it has no value"
