"""App factory, configuration, pages, language, headers, errors, OpenAPI, PWA files."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer
from werkzeug.exceptions import InternalServerError

from melascan.web import create_app
from melascan.web.i18n import catalog

WEB = Path(__file__).resolve().parents[2] / "src" / "melascan" / "web"


# --- factory and configuration -----------------------------------------------------------


def test_secret_key_generated_once_and_private(tmp_path):
    instance = tmp_path / "inst"
    first = create_app({"INSTANCE_PATH": str(instance)})
    key_file = instance / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = create_app({"INSTANCE_PATH": str(instance)})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] and len(first.config["SECRET_KEY"]) >= 32


def test_default_database_is_sqlite_in_instance_folder(app):
    assert app.config["DATABASE_URL"] == f"sqlite:///{Path(app.instance_path) / 'melascan.db'}"
    assert (Path(app.instance_path) / "melascan.db").is_file()
    assert app.config["MAX_CONTENT_LENGTH"] == 15 * 1024 * 1024


def test_configuration_sources(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text("MAX_CONTENT_LENGTH = 1234\nSECRET_KEY = 'from-file'\n")
    monkeypatch.setenv("MELASCAN_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    app = create_app({"INSTANCE_PATH": str(instance), "MAX_CONTENT_LENGTH": 999})
    assert app.config["SECRET_KEY"] == "from-file"  # instance/config.py
    assert app.config["DATABASE_URL"].endswith("env.db")  # environment
    assert app.config["MAX_CONTENT_LENGTH"] == 999  # argument wins
    assert (tmp_path / "env.db").is_file()
    assert not (instance / "secret_key").exists()


# --- pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/intro", "/start", "/main", "/samples", "/history"])
def test_pages_render(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<title>" in html and "MelaScan" in html


def test_splash_forwards_to_intro(client):
    html = client.get("/").get_data(as_text=True)
    assert 'http-equiv="refresh"' in html and "/intro" in html


def test_start_page_says_not_a_diagnosis(client):
    html = client.get("/start").get_data(as_text=True)
    assert 'id="not-a-diagnosis"' in html and "This is not a diagnosis." in html


def test_main_page_has_picker_camera_and_drop_zone(client):
    html = client.get("/main").get_data(as_text=True)
    assert 'accept="image/*"' in html and 'capture="environment"' in html
    assert 'class="dropzone"' in html and 'enctype="multipart/form-data"' in html


def test_untrained_model_banner(client):
    from melascan.web.model import model_card

    html = client.get("/main").get_data(as_text=True)
    assert ('id="untrained-banner"' in html) == (model_card().get("status") == "untrained")


def test_samples_gallery_lists_both_classes(client):
    html = client.get("/samples").get_data(as_text=True)
    assert html.count('class="sample"') == 2
    assert "melanoma" in html and "benign" in html
    image = client.get("/samples/synthetic_benign/image")
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert client.get("/samples/nope/image").status_code == 404
    assert client.post("/samples/nope").status_code == 404


def test_shipped_samples_catalogue_if_present():
    from melascan.web.samples import list_samples

    folder = WEB.parent / "assets" / "samples"
    if not (folder / "samples.json").is_file():
        pytest.skip("no shipped samples (melascan/assets/samples/samples.json) in this checkout")
    app = create_app({"INSTANCE_PATH": str(Path(os.environ.get("TMPDIR", "/tmp")) / "melascan-web-samples-check")})
    with app.app_context():
        samples = list_samples()
    assert len(samples) >= 2
    assert {s.label for s in samples} >= {"benign", "malignant"}


# --- language ----------------------------------------------------------------------------


def test_language_from_accept_language(client):
    html = client.get("/intro", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ko">' in html and "흑색종이란?" in html
    html = client.get("/intro", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert '<html lang="en">' in html


def test_language_toggle_sets_cookie_and_redirects_locally(client):
    response = client.get("/lang/ko?next=/history")
    assert response.status_code == 302 and response.headers["Location"].endswith("/history")
    assert "melascan_lang=ko" in response.headers["Set-Cookie"]
    assert "내 기록" in client.get("/history").get_data(as_text=True)
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        location = client.get("/lang/en", query_string={"next": evil}).headers["Location"]
        assert "evil" not in location and location.endswith("/main")
    assert client.get("/lang/fr").status_code == 404


def test_catalogs_have_the_same_keys_and_placeholders():
    en, ko = catalog("en"), catalog("ko")
    assert set(en) == set(ko)
    for key in en:
        assert set(re.findall(r"{(\w+)}", en[key])) == set(re.findall(r"{(\w+)}", ko[key])), key


def test_every_translation_key_used_in_templates_exists():
    keys = set(catalog("en"))
    used = set()
    for path in list((WEB / "templates").glob("*.html")) + list(WEB.glob("*.py")):
        used |= set(re.findall(r"""\bt\(\s*['"]([a-z0-9_.]+)['"]""", path.read_text()))
    # keys built in templates (``t('level.' ~ level)``) appear as prefixes
    missing = {k for k in used if k not in keys and not any(x.startswith(k) for x in keys if k.endswith((".", "_")))}
    assert not missing, missing


def test_keys_built_from_codes_exist():
    from melascan.web.risk import LEVELS, UNFAMILIAR, UNKNOWN, UNTRAINED
    from melascan.web.service import IMAGE_KINDS

    keys = set(catalog("en"))
    for level in (*LEVELS, UNKNOWN):
        for stem in ("level", "result.headline", "result.advice"):
            assert f"{stem}.{level}" in keys
    for kind in IMAGE_KINDS:
        assert f"image.{kind}" in keys and f"image.{kind}.explain" in keys
    for band in ("benign", "suspicious", "melanoma"):
        assert f"tds_band.{band}" in keys and f"tds_band.short.{band}" in keys
    for code in ("blurry", "too_dark", "no_lesion", "not_dermoscopic", "too_small", "touches_border",
                 UNTRAINED, UNFAMILIAR):
        assert f"warning.{code}" in keys
    assert {"result.advice.unknown_model", "result.advice.unknown_unfamiliar", "result.unfamiliar_suspicious"} <= keys


# --- headers, errors ---------------------------------------------------------------------


def test_owner_cookie_is_httponly_samesite_and_unguessable(client):
    cookie = client.get("/main").headers["Set-Cookie"]
    assert cookie.startswith("melascan_owner=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    token = URLSafeSerializer(client.application.config["SECRET_KEY"], salt="melascan.owner").loads(value)
    assert len(token) == 43  # secrets.token_urlsafe(32), signed by the server
    # a second request with the cookie does not get a new one
    assert "melascan_owner" not in client.get("/main").headers.get("Set-Cookie", "")


def test_security_headers(client):
    response = client.get("/main")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_404_is_json_for_the_api_and_a_page_for_browsers(client):
    api = client.get("/api/v1/analyses/doesnotexist")
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"
    page = client.get("/results/doesnotexist")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Page not found" in page.get_data(as_text=True)


def test_405_has_allow_header(client):
    response = client.put("/api/v1/analyses")
    assert response.status_code == 405 and response.json["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_500_is_handled_without_traceback(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i")})

    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/boom", "boom", boom)
    app.add_url_rule("/boom", "boom_page", boom)
    client = app.test_client()
    response = client.get("/api/v1/boom")
    assert response.status_code == 500 and response.json["error"]["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    page = client.get("/boom")
    assert page.status_code == 500 and "Traceback" not in page.get_data(as_text=True)


def test_aborted_500_uses_the_handler(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i")})

    def fail():
        raise InternalServerError()

    app.add_url_rule("/api/v1/fail", "fail", fail)
    response = app.test_client().get("/api/v1/fail")
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"


# --- OpenAPI, PWA ------------------------------------------------------------------------


def test_openapi_document_covers_every_api_route(client, app):
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops if method != "parameters"}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented, (path, method)
    # every $ref resolves
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


def test_manifest_and_service_worker(client):
    manifest = client.get("/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    data = json.loads(manifest.data)
    assert data["start_url"] == "/main" and data["display"] == "standalone"
    for icon in data["icons"]:
        assert client.get(icon["src"]).status_code == 200
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and sw.mimetype == "text/javascript"
    assert sw.headers["Service-Worker-Allowed"] == "/"
    text = sw.get_data(as_text=True)
    for url in re.findall(r'"(/[^"]+)"', text.split("];")[0]):  # the cached shell exists
        assert client.get(url).status_code == 200, url
    assert "/api" not in text.split("];")[0] and "/results" not in text.split("];")[0]


def test_static_assets_served(client):
    for path in ("/static/css/app.css", "/static/js/app.js", "/static/offline.html", "/static/icons/logo.svg"):
        assert client.get(path).status_code == 200, path


def test_bundled_hangul_font_covers_every_korean_character():
    """Regenerate with `python -m melascan.web.fonts ...` after changing a Korean text."""
    from fontTools.ttLib import TTFont

    from melascan.web.fonts import FAMILY, FONT_DIR, hangul, used_text

    needed = {ord(c) for c in hangul(used_text())}
    for name in ("melascan-hangul.woff", "melascan-hangul-bold.woff"):
        font = TTFont(FONT_DIR / name)
        assert needed <= set(font.getBestCmap()), f"{name} misses {sorted(needed - set(font.getBestCmap()))[:5]}"
        assert font["name"].getDebugName(1) == FAMILY  # renamed, as the OFL asks of modified fonts
    assert "SIL OPEN FONT LICENSE" in (FONT_DIR / "OFL.txt").read_text()
