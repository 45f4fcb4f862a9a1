"""Every hostile case through the JSON API and the upload form (Flask test client).

Refused cases: the documented 4xx with a clear message, never a 5xx or a traceback,
and nothing written (database rows and every file of the instance folder unchanged).
Accepted cases: a full analysis; file names cleaned; polyglot payloads and metadata
not stored; pages, PDF and FHIR of odd inputs still render.
"""

from __future__ import annotations

import io
import logging
import math

import pytest
from hardening_support import CASES, CASES_BY_NAME, assert_clear_error, folder_state, make_app, row_counts, send_case

REFUSED = [c for c in CASES if not c.accepted]
ACCEPTED = [c for c in CASES if c.accepted]
#: Payloads that must not survive into the stored copy of an accepted polyglot.
PAYLOADS = (b"PK\x03\x04", b"<script", b"<?php", b"alert(")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory):
    """The whole corpus runs on SQLite and on a real PostgreSQL (NUL bytes, odd names ...)."""
    config = {}
    if request.param == "postgresql":
        config["DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
    app = make_app(tmp_path_factory.mktemp("api") / "instance", **config)
    yield app
    app.extensions["melascan_db"].kw["bind"].dispose()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def state(app):
    from pathlib import Path

    return row_counts(app), folder_state(Path(app.instance_path))


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert len(REFUSED) >= 20 and len(ACCEPTED) >= 20


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_refused_cases_get_a_clear_4xx_and_change_nothing(app, client, case, caplog):
    before = state(app)
    with caplog.at_level(logging.ERROR):
        response = send_case(client, case)
    assert_clear_error(response, case)
    assert state(app) == before, "a refused upload wrote to the database or the instance folder"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a refused upload logged an error"


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_accepted_cases_are_analysed(app, client, case, caplog):
    with caplog.at_level(logging.ERROR):
        response = send_case(client, case)
    assert response.status_code == 201, (case.name, response.get_data()[:300])
    data = response.get_json()
    probability = data["classification"]["probability"]
    assert math.isfinite(probability) and 0.0 <= probability <= 1.0
    assert data["risk"]["level"] in {"low", "moderate", "high", "unknown", "out_of_scope"}
    assert (data["risk"]["level"] == "out_of_scope") == (data["classification"]["in_scope"] is False)
    assert "/" not in data["filename"] and "\\" not in data["filename"] and len(data["filename"]) <= 255
    original = client.get(data["links"]["images"]["original"])
    assert original.status_code == 200 and original.mimetype in ("image/jpeg", "image/png")
    for payload in PAYLOADS:
        assert payload not in original.data, f"{case.name}: {payload!r} survived into the stored image"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_exif_orientation_is_applied(client):
    data = send_case(client, CASES_BY_NAME["jpeg_exif_rotated"]).get_json()
    assert (data["image"]["width"], data["image"]["height"]) == (200, 300)


@pytest.mark.parametrize("name", ["markup_filename", "unicode_filename", "control_chars_filename",
                                  "null_byte_filename", "long_filename", "traversal_filename",
                                  "wide_3000x300", "small_32x32", "black_image"])  # fmt: skip
def test_odd_results_render_as_page_pdf_and_fhir(client, name):
    data = send_case(client, CASES_BY_NAME[name]).get_json()
    for link in ("page", "pdf", "fhir"):
        response = client.get(data["links"][link])
        assert response.status_code == 200, (name, link)
        assert b"<img src=x onerror" not in response.data, "an uploaded file name reached a page unescaped"
    for kind, url in data["links"]["images"].items():
        assert client.get(url).status_code == 200, (name, kind)
    history = client.get("/history")
    assert history.status_code == 200 and b"<img src=x onerror" not in history.data


def test_traversal_names_are_reduced_to_a_base_name(client):
    data = send_case(client, CASES_BY_NAME["traversal_filename"]).get_json()
    assert data["filename"] == "passwd.jpg"


@pytest.mark.parametrize("name", ["zero_bytes", "svg_as_png", "png_bomb_50000", "jpeg_truncated_half",
                                  "tiny_1x1", "text_txt", "oversize_body"])  # fmt: skip
def test_the_upload_form_shows_an_error_page(app, name):
    """The no-JavaScript form (POST /analyze) answers with a translated HTML error page."""
    case = CASES_BY_NAME[name]
    browser = app.test_client()
    before = state(app)
    response = browser.post("/analyze", data={"image": (io.BytesIO(case.data), case.upload_name)},
                            content_type="multipart/form-data", headers={"Accept": "text/html"})  # fmt: skip
    assert response.status_code == case.api_status
    assert response.mimetype == "text/html"
    assert b"Traceback" not in response.data
    assert state(app) == before


def test_the_server_still_answers_after_the_corpus(app, client, sample_jpeg):
    """Runs last in this module: health, a normal analysis, the history."""
    assert client.get("/api/v1/health").status_code == 200
    response = client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg), "after.jpg")},
                           content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 201
    listing = client.get("/api/v1/analyses").get_json()
    assert listing["count"] >= len(ACCEPTED) + 1
