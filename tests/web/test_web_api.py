"""The JSON API: create/list/get/delete, ownership between browsers, and bad uploads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from melascan.web import db


@pytest.fixture
def database_url(any_database):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_database


def state(app) -> tuple[tuple[int, int, int], set[str]]:
    """Row counts (analyses, images, lesions) and the files in the instance folder."""
    with app.app_context():
        s = db.session()
        counts = tuple(s.scalar(select(func.count()).select_from(m)) for m in (db.Analysis, db.StoredImage, db.Lesion))
    files = {str(p.relative_to(app.instance_path)) for p in Path(app.instance_path).rglob("*")}
    return counts, files


def test_create_returns_the_full_analysis(client, upload, lesion_jpeg):
    response = upload(client, lesion_jpeg, "spot.jpg")
    assert response.status_code == 201, response.json
    data = response.json
    assert response.headers["Location"].endswith(f"/api/v1/analyses/{data['id']}")
    assert data["schema"] == "melascan.analysis/1" and data["filename"] == "spot.jpg"
    p = data["classification"]["probability"]
    assert 0.0 <= p <= 1.0
    assert set(data["classification"]["labels"]) == {"balanced", "screening"}
    assert data["risk"]["level"] in {"low", "moderate", "high", "unknown"}
    assert data["model"]["status"] in {"trained", "untrained"}
    assert set(data["model"]["thresholds"]) == {"balanced", "screening"}
    assert "tds" in data["lesion"] and "tds_band" in data["lesion"]
    assert isinstance(data["quality"]["warnings"], list)
    assert {"contour", "heatmap"} <= set(data["overlays"])
    assert data["image"]["width"] == 320 and len(data["image"]["sha256"]) == 64
    assert "images" not in data  # bytes are served separately
    for kind, url in data["links"]["images"].items():
        image = client.get(url)
        assert image.status_code == 200, kind
        assert image.mimetype in ("image/png", "image/jpeg")
        Image.open(io.BytesIO(image.data)).verify()
    # the stored copy has no metadata and the same pixels size
    original = Image.open(io.BytesIO(client.get(data["links"]["images"]["original"]).data))
    assert original.size == (320, 320) and "exif" not in original.info


def test_list_get_delete(client, upload, lesion_jpeg, make_lesion):
    first = upload(client, lesion_jpeg, "a.jpg").json
    second = upload(client, make_lesion(seed=3, fmt="PNG"), "b.png").json
    listing = client.get("/api/v1/analyses").json
    assert listing["count"] == 2
    assert [a["id"] for a in listing["analyses"]] == [second["id"], first["id"]]  # newest first
    assert client.get(f"/api/v1/analyses/{first['id']}").json["id"] == first["id"]
    assert client.delete(f"/api/v1/analyses/{first['id']}").status_code == 204
    assert client.get(f"/api/v1/analyses/{first['id']}").status_code == 404
    assert client.get(first["links"]["images"]["original"]).status_code == 404
    assert client.delete(f"/api/v1/analyses/{first['id']}").status_code == 404
    assert client.delete("/api/v1/analyses").json == {"deleted": 1}
    assert client.get("/api/v1/analyses").json["count"] == 0


def test_another_browser_never_sees_or_deletes_my_entries(app, upload, lesion_jpeg):
    mine, theirs = app.test_client(), app.test_client()
    data = upload(mine, lesion_jpeg).json
    aid = data["id"]
    mine.post(f"/history/{aid}/lesion", data={"name": "back"})
    lesion_id = mine.get(f"/api/v1/analyses/{aid}").json["tracked_lesion"]["id"]

    assert theirs.get("/api/v1/analyses").json["count"] == 0
    for url in (f"/api/v1/analyses/{aid}", f"/results/{aid}", f"/results/{aid}/images/original",
                f"/results/{aid}/images/thumbnail", f"/results/{aid}/report.pdf", f"/results/{aid}/fhir.json",
                f"/history/lesions/{lesion_id}", f"/history/compare?a={aid}&b={aid}x"):
        assert theirs.get(url).status_code == 404, url
    assert theirs.delete(f"/api/v1/analyses/{aid}").status_code == 404
    assert theirs.post(f"/history/{aid}/delete").status_code == 404
    assert theirs.post(f"/history/{aid}/lesion", data={"name": "stolen"}).status_code == 404
    assert theirs.post(f"/history/lesions/{lesion_id}/rename", data={"name": "x"}).status_code == 404
    assert theirs.delete("/api/v1/analyses").json == {"deleted": 0}
    theirs.post("/history/delete-all", data={"confirm": "yes"})
    # adding an image to someone else's lesion is refused too
    assert upload(theirs, lesion_jpeg, lesion_id=lesion_id).status_code == 404

    assert mine.get(f"/api/v1/analyses/{aid}").status_code == 200
    assert mine.get("/api/v1/analyses").json["count"] == 1
    assert "back" in mine.get("/history").get_data(as_text=True)


def test_forged_or_malformed_owner_cookie_gets_a_fresh_token(app, upload, lesion_jpeg):
    mine = app.test_client()
    aid = upload(mine, lesion_jpeg).json["id"]
    forged = app.test_client()
    forged.set_cookie("melascan_owner", "not-a-token")
    response = forged.get(f"/api/v1/analyses/{aid}")
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers  # an error never issues a cookie (F1)
    assert "melascan_owner=" in forged.get("/main").headers["Set-Cookie"]


# --- bad uploads: a clear 4xx, nothing stored --------------------------------------------


def _jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 150, 120)).save(out, "JPEG")
    return out.getvalue()


def _huge_png() -> bytes:
    """A real 10000 x 10000 PNG (1-bit, so it is small on disk)."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000), 1).save(out, "PNG")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><circle r="40" cx="50" cy="50"/></svg>'

BAD_FILES = {
    "empty": (b"", "lesion.jpg", 400, "empty_file"),
    "text": (b"just some notes, not an image\n", "notes.txt", 400, "unsupported_extension"),
    "text_named_jpg": (b"just some notes, not an image\n", "lesion.jpg", 400, "invalid_image"),
    "truncated_jpeg": (_jpeg_bytes()[:400], "lesion.jpg", 400, "invalid_image"),
    "huge_10000x10000": (_huge_png(), "huge.png", 400, "invalid_image"),
    "tiny": (None, "tiny.png", 400, "invalid_image"),
    "svg": (SVG, "lesion.svg", 400, "unsupported_extension"),
    "svg_named_png": (SVG, "lesion.png", 400, "invalid_image"),
    "wrong_extension": (_jpeg_bytes(), "lesion.exe", 400, "unsupported_extension"),
    "pdf": (b"%PDF-1.4\n%fake\n", "scan.pdf", 400, "unsupported_extension"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_and_nothing_stored(app, client, upload, case, make_plain):
    data, filename, status, code = BAD_FILES[case]
    if data is None:
        data = make_plain(size=8)
    client.get("/main")  # make sure the database and instance folder exist
    before = state(app)
    response = upload(client, data, filename)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert state(app) == before


def test_bad_file_in_the_html_form_gives_a_page(app, client, make_plain):
    before = state(app)
    response = client.post("/analyze", data={"image": (io.BytesIO(b"not an image"), "x.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "This file cannot be used as an image" in html and "x.jpg" in html
    assert state(app) == before


def test_missing_field_wrong_content_type_oversize(app, client, upload, lesion_jpeg):
    client.get("/main")
    before = state(app)
    missing = upload(client, lesion_jpeg, field="file")
    assert missing.status_code == 400 and missing.json["error"]["code"] == "missing_file"
    no_file = client.post("/api/v1/analyses", data={"image": (io.BytesIO(b""), "")}, content_type="multipart/form-data")
    assert no_file.status_code == 400 and no_file.json["error"]["code"] == "missing_file"
    as_json = client.post("/api/v1/analyses", json={"image": "aGVsbG8="})
    assert as_json.status_code == 415 and as_json.json["error"]["code"] == "unsupported_media_type"
    raw = client.post("/api/v1/analyses", data=lesion_jpeg, content_type="image/jpeg")
    assert raw.status_code == 415
    oversize = upload(client, b"\xff" * (16 * 1024 * 1024), "big.jpg")
    assert oversize.status_code == 413 and oversize.json["error"]["code"] == "too_large"
    assert "15 MB" in oversize.json["error"]["message"]
    page = client.post("/analyze", data={"image": (io.BytesIO(b"\xff" * (16 * 1024 * 1024)), "big.jpg")},
                       content_type="multipart/form-data")
    assert page.status_code == 413 and page.mimetype == "text/html"
    assert state(app) == before


def test_unknown_lesion_id_is_refused_before_analysis(app, client, upload, lesion_jpeg):
    client.get("/main")
    before = state(app)
    assert upload(client, lesion_jpeg, lesion_id="nope").status_code == 404
    assert state(app) == before


def test_health(client):
    data = client.get("/api/v1/health").json
    assert data["ok"] is True and data["model"]["status"] in ("trained", "untrained")
