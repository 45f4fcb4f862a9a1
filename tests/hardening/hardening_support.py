"""Helpers shared by the hardening tests: the hostile corpus, request helpers, state snapshots.

The corpus (``melascan.web.hostile_corpus``) and the live server
(``melascan.web.serverproc``) come from the package, as the benchmarks use them; this
folder is on pytest's ``pythonpath`` (pyproject.toml) so test modules can
``import hardening_support``.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

from melascan.web import create_app
from melascan.web.hostile_corpus import build_cases
from melascan.web.testing import BrowserClient

ROOT = Path(__file__).resolve().parents[2]


CASES = build_cases()
CASES_BY_NAME = {c.name: c for c in CASES}


def make_app(instance: Path, **config):
    # The corpus sends far more analyses per minute than a person would: no rate limit here.
    app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "PRELOAD_MODEL": True,
                      "RATELIMIT_ENABLED": False, **config})
    app.test_client_class = BrowserClient  # owner cookie, form token and API header, like a browser
    return app


def send_case(client, case, url: str = "/api/v1/analyses"):
    """Send ``case`` the way its ``request`` field says (Flask test client)."""
    if case.request == "json":
        return client.post(url, json={"image": case.data[:64].hex(), "filename": case.upload_name})
    if case.request == "raw":
        return client.post(url, data=case.data, content_type="image/jpeg")
    if case.request == "urlencoded":
        return client.post(url, data={"image": case.data[:64].hex()})
    field = "file" if case.request == "wrong_field" else "image"
    mime = "text/html" if case.request == "lying_mime" else "application/octet-stream"
    return client.post(url, data={field: (io.BytesIO(case.data), case.upload_name, mime)},
                       content_type="multipart/form-data")  # fmt: skip


def post_http(session, base_url: str, case, timeout: float = 120):
    """Send ``case`` over real HTTP with ``requests``."""
    url = f"{base_url}/api/v1/analyses"
    if case.request == "json":
        return session.post(url, json={"image": case.data[:64].hex()}, timeout=timeout)
    if case.request == "raw":
        return session.post(url, data=case.data, headers={"Content-Type": "image/jpeg"}, timeout=timeout)
    field = "file" if case.request == "wrong_field" else "image"
    return session.post(url, files={field: (case.upload_name, io.BytesIO(case.data), "application/octet-stream")},
                        timeout=timeout)  # fmt: skip


def folder_state(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def db_counts(db_path: Path) -> tuple[int, int, int]:
    """Rows in ``analyses``, ``analysis_images``, ``lesions`` (read with sqlite3 directly)."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return tuple(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("analyses", "analysis_images", "lesions"))  # fmt: skip
    finally:
        con.close()


def row_counts(app) -> tuple[int, int, int]:
    """Rows in ``analyses``, ``analysis_images``, ``lesions`` on any backend (SQLAlchemy)."""
    from sqlalchemy import func, select

    from melascan.web import db

    with app.app_context():
        return tuple(db.session().scalar(select(func.count()).select_from(m))
                     for m in (db.Analysis, db.StoredImage, db.Lesion))  # fmt: skip


def integrity(db_path: Path) -> str:
    con = sqlite3.connect(db_path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def assert_clear_error(response, case) -> None:
    """The response is the case's 4xx JSON error with a message holding its words."""
    assert response.status_code == case.api_status, (case.name, response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert body and set(body) == {"error"}, (case.name, body)
    assert body["error"]["code"] == case.api_code, (case.name, body)
    message = body["error"]["message"].lower()
    assert "traceback" not in message
    for word in case.message:
        assert word in message, (case.name, word, message)
