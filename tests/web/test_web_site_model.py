"""A model calibrated for a site (`melascan calibrate`) served by the app: each result says which
images its operating points were measured on, the site's, out of fold."""

from __future__ import annotations

import io
import re

from melascan.export.site import calibrate_for_site
from melascan.inference.classifier import default_model_dir
from melascan.web.app import create_app
from melascan.web.risk import model_level
from melascan.web.testing import BrowserClient


def test_the_app_serves_a_site_calibrated_model_with_its_own_operating_points(tmp_path, samples_dir, make_lesion):
    rows = []
    for i in range(24):
        path = tmp_path / f"site_{i:02d}.jpg"
        path.write_bytes(make_lesion(seed=100 + i, radius=0.2 + 0.01 * (i % 10)))
        rows.append(f"{path},{'malignant' if i % 2 else 'benign'}")
    (tmp_path / "site.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    model = tmp_path / "clinic_model"
    card = calibrate_for_site(default_model_dir(), tmp_path / "site.csv", model, name="Clinic A", min_per_class=10)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, "SAMPLES_DIR": str(samples_dir),
                      "MODEL_PATH": str(model)})
    app.test_client_class = BrowserClient
    client = app.test_client()
    response = client.post("/analyze", data={"image": (io.BytesIO(make_lesion(seed=7)), "mole.jpg")},
                           content_type="multipart/form-data")
    aid = re.search(r"/results/([\w-]+)$", response.headers["Location"]).group(1)
    data = client.get(f"/api/v1/analyses/{aid}").json
    probability = data["classification"]["probability"]
    thresholds = card["calibration"]["thresholds"]
    assert thresholds != card["calibration"]["replaced"]["thresholds"]
    assert data["risk"]["model_level"] == model_level(probability, thresholds["screening"], thresholds["balanced"])
    html = client.get(f"/results/{aid}").get_data(as_text=True)
    assert "on the Clinic A set" in html
    app.extensions["melascan_db"].kw["bind"].dispose()
