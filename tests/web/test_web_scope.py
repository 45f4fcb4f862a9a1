"""An image that is not a dermoscopic photo of a skin spot gets 'please retake', never a probability;
one unlike the images the model was measured on gets its probability but no reassurance."""

from __future__ import annotations

import io
import json
import re
import shutil

from markupsafe import escape
from PIL import Image

from melascan.evaluation.nonskin import printed_text
from melascan.inference.classifier import default_model_dir
from melascan.web.app import create_app
from melascan.web.i18n import translate
from melascan.web.testing import BrowserClient


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


def test_a_picture_unlike_the_validation_images_is_never_called_low_risk(tmp_path, samples_dir):
    """The embedded model with its familiar cut moved below every picture's score: each in-scope
    picture is then unfamiliar, as a new dermatoscope's pictures mostly are (docs/model.md)."""
    model = tmp_path / "model"
    shutil.copytree(default_model_dir(), model)
    card = json.loads((model / "model_card.json").read_text())
    card["scope"]["familiar_below"] = 0.01
    (model / "model_card.json").write_text(json.dumps(card))
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, "SAMPLES_DIR": str(samples_dir),
                      "MODEL_PATH": str(model)})
    app.test_client_class = BrowserClient
    client = app.test_client()
    en = lambda key: str(escape(translate(key, "en")))  # noqa: E731
    samples = default_model_dir().parent / "samples"
    for name in ("benign_1.jpg", "malignant_4.jpg"):  # the embedded model: P 0.01 (low) and 0.97 (high)
        response = client.post("/analyze", data={"image": (io.BytesIO((samples / name).read_bytes()), name)},
                               content_type="multipart/form-data")
        aid = re.search(r"/results/([\w-]+)$", response.headers["Location"]).group(1)
        data = client.get(f"/api/v1/analyses/{aid}").json
        assert data["classification"]["in_scope"] is True and data["classification"]["familiar"] is False
        risk = data["risk"]
        assert "unfamiliar_picture" in risk["blocking_warnings"] and risk["level"] != "low"
        html = client.get(f"/results/{aid}").get_data(as_text=True)
        assert 'id="probability-value"' in html  # the number is shown, with what it is not
        if risk["level"] == "unknown":
            assert en("result.advice.unknown_unfamiliar") in html and en("warning.unfamiliar_picture") in html
        else:
            assert 'id="unfamiliar-note"' in html and en("result.unfamiliar_suspicious") in html
        assert client.get(f"/results/{aid}/report.pdf").status_code == 200
    app.extensions["melascan_db"].kw["bind"].dispose()
