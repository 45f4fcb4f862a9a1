"""The production server for real (``melascan serve`` under gunicorn, over HTTP).

* a subset of the hostile corpus over real HTTP: the same answers as with the test
  client, nothing stored for refused inputs, and the server still answers;
* SIGKILL of the whole server (master and workers) in the middle of a burst of saves:
  after a restart every acknowledged analysis (201 received) is there, with its images,
  and ``PRAGMA integrity_check`` is ok.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests
from hardening_support import CASES_BY_NAME, ROOT, db_counts, folder_state, integrity, post_http

from melascan.web.serverproc import live_server
from melascan.web.testing import api_session

LIVE_REFUSED = ["zero_bytes", "text_as_jpg", "svg_script", "svg_as_png", "png_bomb_50000", "png_bomb_8000_real",
                "jpeg_truncated_half", "tiny_1x1", "json_body", "raw_image_body", "wrong_field_name"]  # fmt: skip
LIVE_ACCEPTED = ["traversal_filename", "unicode_filename", "gif_animated", "png_16bit_gray", "jpeg_cmyk",
                 "jpeg_zip_polyglot"]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("live") / "instance"
    with live_server(instance) as (url, proc):
        yield url, instance


@pytest.mark.parametrize("name", LIVE_REFUSED)
def test_refused_over_http(server, name):
    url, instance = server
    case = CASES_BY_NAME[name]
    before = db_counts(instance / "melascan.db"), folder_state(instance)
    with api_session(url) as session:
        response = post_http(session, url, case)
    assert response.status_code == case.api_status, response.text[:300]
    assert response.json()["error"]["code"] == case.api_code
    assert (db_counts(instance / "melascan.db"), folder_state(instance)) == before


def test_oversize_body_over_http(server):
    """A 15 MB+ body: 413 (or, if the server closes before the client finished sending,
    a closed connection); never stored, and the server keeps answering."""
    url, instance = server
    case = CASES_BY_NAME["oversize_body"]
    before = db_counts(instance / "melascan.db")
    with api_session(url) as session:
        try:
            response = post_http(session, url, case)
            assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
        except requests.ConnectionError:
            pass
    assert db_counts(instance / "melascan.db") == before
    assert requests.get(f"{url}/api/v1/health", timeout=30).status_code == 200


@pytest.mark.parametrize("name", LIVE_ACCEPTED)
def test_accepted_over_http(server, name):
    url, _ = server
    with api_session(url) as session:
        response = post_http(session, url, CASES_BY_NAME[name])
        assert response.status_code == 201, response.text[:300]
        assert session.get(url + response.json()["links"]["page"], timeout=30).status_code == 200


def test_still_answering_after_the_corpus(server):
    url, _ = server
    health = requests.get(f"{url}/api/v1/health", timeout=30)
    assert health.status_code == 200 and health.json()["ok"] is True


def test_sigkill_during_a_burst_of_saves_loses_nothing_acknowledged(tmp_path):
    instance = tmp_path / "instance"
    images = [p.read_bytes() for p in sorted((ROOT / "src/melascan/assets/samples").glob("*.jpg"))]
    acknowledged: list[tuple[requests.Session, str]] = []
    stop = threading.Event()

    def client(session: requests.Session, offset: int) -> None:
        i = offset
        while not stop.is_set():
            try:
                r = session.post(f"{url}/api/v1/analyses", files={"image": (f"{i}.jpg", images[i % len(images)])},
                                 timeout=120)  # fmt: skip
            except requests.RequestException:
                return  # the server was killed under this request
            if r.status_code == 201:
                acknowledged.append((session, r.json()["id"]))
            i += 1

    with live_server(instance, workers=2) as (url, proc):
        sessions = [api_session(url) for _ in range(6)]
        threads = [threading.Thread(target=client, args=(s, k)) for k, s in enumerate(sessions)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 180
        while len(acknowledged) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # master and workers at once, with requests in flight
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=130)
    assert len(acknowledged) >= 8, "the burst did not get going"

    db_path = instance / "melascan.db"
    with live_server(instance, workers=1) as (url, _):
        for session, analysis_id in acknowledged:
            response = session.get(f"{url}/api/v1/analyses/{analysis_id}", timeout=30)
            assert response.status_code == 200, f"acknowledged analysis {analysis_id} lost"
            original = session.get(url + response.json()["links"]["images"]["original"], timeout=30)
            assert original.status_code == 200 and original.content
        after = sessions[0].post(f"{url}/api/v1/analyses", files={"image": ("after.jpg", images[0])}, timeout=120)
        assert after.status_code == 201
    assert integrity(db_path) == "ok"
    assert db_counts(db_path)[0] >= len(acknowledged) + 1
    for session in sessions:
        session.close()
