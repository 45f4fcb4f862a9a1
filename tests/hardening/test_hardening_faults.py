"""Faults on the server side: a broken model, and a database that is read-only, locked or full.

* Model missing or corrupt: ``Classifier``, ``create_app`` and ``melascan serve`` stop at
  start with a ``ModelError`` that names the file (the CLI: exit 2, no traceback); an app
  built without preloading answers 503 ``model_unavailable`` and stores nothing.
* Database: the failing request gets a clean 503 JSON ``storage_unavailable`` (with
  ``Retry-After``), nothing already saved is lost, and ``PRAGMA integrity_check`` is ok.
  Read-only: SQLite opened with ``mode=ro`` (root ignores file permissions, so chmod
  would not do). Locked: another connection holds ``BEGIN EXCLUSIVE`` (the app gives up
  after SQLite's 5 s busy timeout). Full: ``PRAGMA max_page_count`` capped at the current
  size (SQLITE_FULL, portable), and a real full disk on a 1.2 MB tmpfs (needs ``mount``;
  skipped without the privilege).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hardening_support import db_counts, folder_state, integrity, make_app
from sqlalchemy import event

from melascan.cli import main
from melascan.errors import ModelError
from melascan.inference import Classifier
from melascan.inference.classifier import default_model_dir

# --- a broken model ------------------------------------------------------------------------


def _rewrite_checksum(folder: Path, key: str) -> None:
    """Make the card's sha256 match the (broken) file, so only loading can notice."""
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text())
    path = folder / card["files"][key]["name"]
    card["files"][key]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path.write_text(json.dumps(card))


def broken_model(tmp_path: Path, kind: str) -> Path:
    """A copy of the embedded model folder, broken in one way."""
    folder = tmp_path / f"model_{kind}"
    shutil.copytree(default_model_dir(), folder)
    onnx = folder / "melascan_default.onnx"
    if kind == "onnx_missing":
        onnx.unlink()
    elif kind == "onnx_truncated":  # checksum no longer matches the card
        onnx.write_bytes(onnx.read_bytes()[:1000])
    elif kind == "onnx_garbage_checksum_ok":  # only onnxruntime can tell
        onnx.write_bytes(b"this is not an ONNX graph\n" * 100)
        _rewrite_checksum(folder, "onnx")
    elif kind == "head_garbage_checksum_ok":
        (folder / "melascan_default_head.npz").write_bytes(b"PK\x03\x04 not a real npz")
        _rewrite_checksum(folder, "head")
    elif kind == "card_not_json":
        (folder / "model_card.json").write_text("{ this is not json")
    elif kind == "card_missing":
        (folder / "model_card.json").unlink()
    else:
        raise ValueError(kind)
    return folder


MODEL_FAULTS = ["onnx_missing", "onnx_truncated", "onnx_garbage_checksum_ok",
                "head_garbage_checksum_ok", "card_not_json", "card_missing"]  # fmt: skip


@pytest.mark.parametrize("kind", MODEL_FAULTS)
def test_broken_model_fails_at_start(tmp_path, kind, sample_jpeg, capsys):
    folder = broken_model(tmp_path, kind)
    with pytest.raises(ModelError) as exc:
        Classifier(folder)
    assert str(folder) in str(exc.value)

    instance = tmp_path / "instance"
    with pytest.raises(ModelError):
        make_app(instance, MODEL_PATH=str(folder))

    image = tmp_path / "lesion.jpg"
    image.write_bytes(sample_jpeg)
    assert main(["predict", str(image), "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "melascan predict: error:" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["onnx_missing", "onnx_garbage_checksum_ok"])
def test_app_without_preload_answers_503_and_stores_nothing(tmp_path, kind, sample_jpeg):
    folder = broken_model(tmp_path, kind)
    app = make_app(tmp_path / "instance", MODEL_PATH=str(folder), PRELOAD_MODEL=False)
    client = app.test_client()
    client.get("/main")  # a browser loads the page (and gets its cookie) before it uploads
    before = folder_state(tmp_path / "instance")
    response = client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg), "a.jpg")},
                           content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "model_unavailable"
    assert client.get("/api/v1/health").status_code == 503
    assert folder_state(tmp_path / "instance") == before


@pytest.mark.parametrize("kind", ["onnx_missing", "onnx_garbage_checksum_ok"])
def test_serve_refuses_to_start_with_a_broken_model(tmp_path, kind):
    """The master opens the model before forking: a clear message, exit 2, no traceback,
    even when the checksum matches and only onnxruntime can tell."""
    folder = broken_model(tmp_path, kind)
    env = {**os.environ, "MELASCAN_MODEL_PATH": str(folder)}
    result = subprocess.run(
        [sys.executable, "-m", "melascan.cli", "serve", "--port", "0", "--workers", "1",
         "--instance", str(tmp_path / "instance")],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout[-1500:] + result.stderr[-1500:]
    assert "melascan serve: error:" in result.stderr and str(folder) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# --- the database ------------------------------------------------------------------------


def post(client, data: bytes, name: str = "lesion.jpg"):
    return client.post("/api/v1/analyses", data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def assert_storage_503(response) -> None:
    assert response.status_code == 503, response.get_data()[:300]
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert "database" in response.get_json()["error"]["message"]
    assert response.headers.get("Retry-After")


def assert_saved_intact(client, ids: list[str], db_path: Path) -> None:
    listing = client.get("/api/v1/analyses").get_json()
    assert {a["id"] for a in listing["analyses"]} >= set(ids)
    for analysis_id in ids:
        data = client.get(f"/api/v1/analyses/{analysis_id}").get_json()
        assert client.get(data["links"]["images"]["original"]).status_code == 200
    assert integrity(db_path) == "ok"


@pytest.fixture
def saved(tmp_path, sample_jpeg):
    """An app with two saved analyses: ``(app, client, ids, db_path)``."""
    app = make_app(tmp_path / "instance")
    client = app.test_client()
    ids = [post(client, sample_jpeg).get_json()["id"] for _ in range(2)]
    return app, client, ids, tmp_path / "instance" / "melascan.db"


def test_read_only_database(saved, tmp_path, sample_jpeg):
    app, client, ids, db_path = saved
    read_only = make_app(tmp_path / "instance", DATABASE_URL=f"sqlite:///file:{db_path}?mode=ro&uri=true")
    ro_client = read_only.test_client()
    ro_client.set_cookie("melascan_owner", client.get_cookie("melascan_owner").value)
    counts = db_counts(db_path)
    assert_storage_503(post(ro_client, sample_jpeg))
    assert ro_client.delete(f"/api/v1/analyses/{ids[0]}").status_code == 503
    page = ro_client.post("/analyze", data={"image": (io.BytesIO(sample_jpeg), "a.jpg")},
                          content_type="multipart/form-data", headers={"Accept": "text/html"})  # fmt: skip
    assert page.status_code == 503 and page.mimetype == "text/html" and b"Traceback" not in page.data
    assert db_counts(db_path) == counts
    assert_saved_intact(ro_client, ids, db_path)  # reading still works


def test_locked_database(saved, sample_jpeg):
    app, client, ids, db_path = saved
    counts = db_counts(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        assert_storage_503(post(client, sample_jpeg))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert db_counts(db_path) == counts
    assert_saved_intact(client, ids, db_path)
    assert post(client, sample_jpeg).status_code == 201  # and it recovers


def test_full_database_max_page_count(saved, sample_jpeg):
    app, client, ids, db_path = saved
    engine = app.extensions["melascan_db"].kw["bind"]

    def cap_at_current_size(dbapi_connection, _record) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", cap_at_current_size)
    engine.dispose()  # new connections get the cap
    counts = db_counts(db_path)
    assert_storage_503(post(client, sample_jpeg))
    assert db_counts(db_path) == counts
    assert_saved_intact(client, ids, db_path)
    event.remove(engine, "connect", cap_at_current_size)
    engine.dispose()
    assert post(client, sample_jpeg).status_code == 201


@pytest.fixture
def tiny_tmpfs():
    """A 1.2 MB tmpfs (a disk that fills up after some analyses); skipped without ``mount``."""
    mountpoint = Path(tempfile.mkdtemp(prefix="melascan-tmpfs-"))
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
        mountpoint.rmdir()


def test_full_disk_tmpfs(tiny_tmpfs, sample_jpeg):
    instance = tiny_tmpfs / "instance"
    app = make_app(instance)
    client = app.test_client()
    ids, failures = [], []
    # ~70 kB per analysis since originals and overlays are stored as 1024 px JPEGs: fill
    # the 1.2 MB disk, then try twice more.
    while len(failures) < 3 and len(ids) < 200:
        response = post(client, sample_jpeg)
        if response.status_code == 201:
            ids.append(response.get_json()["id"])
        else:
            assert_storage_503(response)
            failures.append(response)
    assert ids and failures, "the tmpfs should hold some analyses, then be full"
    assert_saved_intact(client, ids, instance / "melascan.db")
    app.extensions["melascan_db"].kw["bind"].dispose()  # close the files before unmounting
