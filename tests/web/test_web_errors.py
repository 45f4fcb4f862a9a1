"""Every server error in the reader's language: the error paths walked with the Korean UI
find no English detail left (issue 12: "server error details stay English")."""

from __future__ import annotations

import io
import re

from melascan.web.i18n import catalog

HANGUL = re.compile(r"[\uac00-\ud7af]")


def korean(client):
    client.get("/lang/ko?next=/main")
    return client


#: Names, codes and values a Korean message may quote as they are.
VERBATIM = re.compile(r"multipart/form-data|X-Requested-With|Sec-Fetch-Site|Origin|MelaScan|GET /api/v1/health|"
                      r"JPEG|PNG|WebP|BMP|TIFF|GIF|HTTP|MB|KB|'[^']*'|\S+\.(jpg|txt|exe)|[\w-]*\d[\w-]*")


def assert_korean(message: str, where: str) -> None:
    assert HANGUL.search(message), f"{where}: no Korean in {message!r}"
    leftover = VERBATIM.sub(" ", message)
    english = re.search(r"[A-Za-z]{3,}(?:[\s,;:]+[A-Za-z]{2,})+", leftover)
    assert english is None, f"{where}: English left in {message!r}"


def error_message(response) -> str:
    if response.is_json:
        return response.json["error"]["message"]
    match = re.search(r'<p class="error-message">(.*?)</p>', response.get_data(as_text=True), re.S)
    assert match, response.get_data(as_text=True)[:300]
    return match.group(1)


def test_every_error_detail_is_korean_on_the_korean_ui(app, upload, lesion_jpeg):
    from flask.testing import FlaskClient

    from melascan.web.testing import BrowserClient

    app.config.update(MAX_CONTENT_LENGTH=200_000, MAX_ANALYSES_PER_OWNER=1)
    client = korean(app.test_client())
    api = "/api/v1/analyses"
    aid = upload(client, lesion_jpeg).json["id"]  # fills the history (quota 1)
    client.post(f"/history/{aid}/lesion", data={"name": "점"})
    lesion_id = client.get(f"{api}/{aid}").json["tracked_lesion"]["id"]
    cases = {
        "quota": upload(client, lesion_jpeg),
        "not multipart": client.post(api, data="x", content_type="text/plain"),
        "no file": client.post(api, data={"other": "x"}, content_type="multipart/form-data"),
        "empty file": upload(client, b"", "empty.jpg"),
        "extension": upload(client, b"MZ", "virus.exe"),
        "too large": upload(client, b"x" * 300_000, "big.jpg"),
        "unknown lesion": upload(client, lesion_jpeg, lesion_id="nope"),
        "unknown analysis": client.get(f"{api}/nope"),
        "delete unknown": client.delete(f"{api}/nope"),
        "page not found": client.get("/results/nope", headers={"Accept": "text/html"}),
        "method": client.get("/analyze"),
        "delete all unconfirmed": client.post("/history/delete-all", data={}),
        "blank name": client.post(f"/history/lesions/{lesion_id}/rename", data={"name": "  "}),
        "api header": client.post(api, headers={"X-Requested-With": ""}),
        "other site": client.post("/history/delete-all", headers={"Sec-Fetch-Site": "cross-site"}),
        "origin": client.post("/history/delete-all", headers={"Origin": "https://evil.example"}),
    }
    app.config.update(MAX_ANALYSES_PER_OWNER=10)
    cases["not an image"] = upload(client, b"this is text, not a picture", "fake.jpg")
    plain = FlaskClient(app, app.response_class, use_cookies=True)  # no owner cookie, no form token
    plain.set_cookie("melascan_lang", "ko")
    cases["no cookie"] = plain.post(api, headers={"X-Requested-With": "x"})
    plain.get("/main")
    cases["form token"] = plain.post("/history/delete-all", data={"confirm": "yes"})
    twice = FlaskClient(app, app.response_class, use_cookies=True)
    twice.set_cookie("melascan_lang", "ko")
    twice.set_cookie("melascan_owner", "a", path="/")
    twice.set_cookie("melascan_owner", "b", path="/history")
    cases["two cookies"] = twice.get("/history")
    for where, response in cases.items():
        assert response.status_code >= 400, (where, response.status_code)
        assert_korean(error_message(response), where)
    assert isinstance(client, BrowserClient)


def test_rate_limit_and_server_errors_are_korean_too(tmp_path, samples_dir, lesion_jpeg):
    from melascan.web import create_app
    from melascan.web.testing import BrowserClient

    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "TESTING": True, "SAMPLES_DIR": str(samples_dir),
                      "RATELIMIT_ENABLED": True, "ANALYSIS_RATE_LIMIT": "1 per minute"})
    app.test_client_class = BrowserClient
    client = korean(app.test_client())

    def post():
        return client.post("/api/v1/analyses", data={"image": (io.BytesIO(lesion_jpeg), "a.jpg")},
                           content_type="multipart/form-data")

    assert post().status_code == 201
    limited = post()
    assert limited.status_code == 429 and "1분에 1회" in limited.json["error"]["message"]
    assert_korean(limited.json["error"]["message"], "429")


def test_every_error_text_has_a_korean_translation():
    en, ko = catalog("en"), catalog("ko")
    for key in en:
        if key.startswith("error.") and not key.endswith(".title") and key != "error.status":
            assert ko[key] != en[key] and HANGUL.search(ko[key]), key
            assert_korean(re.sub(r"{\w+}", "x1", ko[key]), key)
