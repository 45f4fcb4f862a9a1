"""PDF and FHIR downloads."""

from __future__ import annotations

import io
import json

from fhir.resources.R4B.bundle import Bundle


def test_pdf_report(client, upload, lesion_jpeg):
    aid = upload(client, lesion_jpeg, "라벨-스팟.jpg").json["id"]  # non-Latin-1 name must not break it
    response = client.get(f"/results/{aid}/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert b"attachment" in response.headers["Content-Disposition"].encode()
    assert len(response.data) > 10_000  # has the images
    try:  # check the text when a PDF reader is installed
        from pypdf import PdfReader
    except ImportError:
        return
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    assert "Disclaimer" in text and "Probability of melanoma" in text
    assert "How often it flags harmless spots" in text


def test_fhir_bundle_validates_as_r4(client, upload, lesion_jpeg):
    data = upload(client, lesion_jpeg).json
    response = client.get(f"/results/{data['id']}/fhir.json")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    bundle = json.loads(response.data)
    Bundle.model_validate(bundle)  # raises if invalid
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types[0] == "DiagnosticReport" and "Observation" in types and "Media" in types and "Device" in types
    report = bundle["entry"][0]["resource"]
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert {r["reference"] for r in report["result"]} <= full_urls  # references resolve inside the bundle
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    probability = next(o for o in observations if o["code"]["coding"][0]["code"] == "melanoma-probability")
    assert probability["valueQuantity"]["code"] == "%"
    assert abs(probability["valueQuantity"]["value"] - 100 * data["classification"]["probability"]) < 1e-3
    risk = next(o for o in observations if o["code"]["coding"][0]["code"] == "melanoma-risk-level")
    if data["risk"]["level"] != "unknown":
        assert risk["valueCodeableConcept"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/risk-probability"
    assert all(o["category"][0]["coding"][0]["code"] == "imaging" for o in observations)
    assert "Not a diagnosis" in report["conclusion"]


def test_korean_pdf_report_holds_the_korean_lesion_name_as_text(client, upload, lesion_jpeg, tmp_path):
    """The report follows the reader's language and embeds fonts for Hangul (read back with pdftotext)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed; `make test` installs it")
    aid = upload(client, lesion_jpeg, "spot.jpg").json["id"]
    client.get("/lang/ko?next=/main")
    assert client.post(f"/history/{aid}/lesion", data={"name": "왼쪽 어깨 점"}).status_code in (302, 303)
    pdf = client.get(f"/results/{aid}/report.pdf")
    assert pdf.status_code == 200
    (tmp_path / "r.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "왼쪽 어깨 점" in text and "MelaScan 분석 보고서" in text and "??" not in text


def test_fhir_bundle_carries_the_tracked_spots_name_as_body_site(client, upload, lesion_jpeg):
    aid = upload(client, lesion_jpeg).json["id"]
    assert client.post(f"/history/{aid}/lesion", data={"name": "Left shoulder, upper"}).status_code in (302, 303)
    bundle = json.loads(client.get(f"/results/{aid}/fhir.json").data)
    Bundle.model_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    sited = [r for r in resources if r["resourceType"] in ("Observation", "Media")]
    assert sited and all(r["bodySite"]["text"] == "Left shoulder, upper" for r in sited)
    assert resources[0]["conclusion"].startswith("Spot: Left shoulder, upper.")
