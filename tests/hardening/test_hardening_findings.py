"""The second security review (issue 13): one test per finding F1-F8, each failing on the
code before the fix, through a live ``melascan serve`` where the finding needs one.

Traffic goes to 127.0.0.1 only; slow-client tests use a bounded number of sockets and
a bounded time. F4 runs nginx (``deploy/nginx-melascan.conf``, installed by
``make test``) in front of gunicorn; F6 and the name checks run on SQLite and on a real
PostgreSQL.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from hardening_support import ROOT, make_app
from PIL import Image

from melascan.web import db, serverproc
from melascan.web.testing import api_session

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def sample_jpeg_bytes() -> bytes:
    return (ROOT / "src" / "melascan" / "assets" / "samples" / "benign_1.jpg").read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One ``melascan serve`` (1 worker) for the HTTP checks: ``(url, master pid)``."""
    instance = tmp_path_factory.mktemp("findings") / "instance"
    with serverproc.live_server(instance) as (url, proc):
        yield url, proc.pid


def upload(session: requests.Session, url: str, data: bytes, **form) -> requests.Response:
    return session.post(f"{url}/api/v1/analyses", files={"image": ("spot.jpg", data)}, data=form, timeout=120)


def form_token(session: requests.Session, url: str) -> str:
    """The CSRF token of the forms, as a browser that loaded the page has it ("" if none)."""
    found = TOKEN_RE.search(session.get(f"{url}/history", timeout=30).text)
    return found.group(1) if found else ""


def count(session: requests.Session, url: str) -> int:
    return session.get(f"{url}/api/v1/analyses", timeout=30).json()["count"]


# --- F1: a response to a request without the cookie must not set one (cookie wiping) ----


def test_f1_no_cookie_from_errors_or_cookieless_posts(server):
    url, _ = server
    answers = [
        requests.post(f"{url}/api/v1/health", timeout=30),  # 405
        requests.post(f"{url}/history/delete-all", data={"confirm": "yes"}, timeout=30),  # cross-site form
        requests.post(f"{url}/api/v1/analyses", headers={"X-Requested-With": "x"}, timeout=30),
        requests.get(f"{url}/results/doesnotexist", timeout=30),  # 404
    ]
    assert [r.status_code for r in answers] == [405, 403, 403, 404]
    for response in answers:
        assert "Set-Cookie" not in response.headers, (response.request.method, response.url)
    assert answers[2].json()["error"]["code"] == "no_owner"
    # a successful page still gives a new browser its cookie
    assert "melascan_owner=" in requests.get(f"{url}/main", timeout=30).headers["Set-Cookie"]


# --- F2: CSRF from other origins, including same-site ones ---------------------------------


def test_f2_cross_origin_and_same_site_requests_are_refused(server, sample_jpeg_bytes):
    url, _ = server
    victim = api_session(url)
    assert upload(victim, url, sample_jpeg_bytes).status_code == 201
    token = form_token(victim, url)
    other_port = f"http://127.0.0.1:{int(url.rsplit(':', 1)[1]) + 1}"
    attacks = [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": other_port, "Sec-Fetch-Site": "same-site"},  # another port: same site, other origin
        {"Origin": "null"},
    ]
    for headers in attacks:  # even with a valid form token
        response = victim.post(f"{url}/history/delete-all", data={"confirm": "yes", "csrf_token": token},
                               headers=headers, timeout=30, allow_redirects=False)
        assert response.status_code == 403, headers
    # an old browser that sends no Origin: the form token is missing
    no_token = victim.post(f"{url}/history/delete-all", data={"confirm": "yes"}, timeout=30, allow_redirects=False)
    assert no_token.status_code == 403
    # the API: a form can post multipart, but cannot add the header
    bare = requests.Session()
    bare.cookies.update(victim.cookies)
    assert upload(bare, url, sample_jpeg_bytes).status_code == 403
    assert bare.delete(f"{url}/api/v1/analyses", timeout=30).status_code == 403
    assert upload(victim, url, sample_jpeg_bytes, lesion_id="").status_code == 201
    assert count(victim, url) == 2, "a refused request changed the history"
    # the real page: same origin, with the token
    same = victim.post(f"{url}/history/delete-all", data={"confirm": "yes", "csrf_token": token},
                       headers={"Origin": url, "Sec-Fetch-Site": "same-origin"}, timeout=30, allow_redirects=False)
    assert same.status_code == 303 and count(victim, url) == 0


# --- F3: only server-issued tokens; two owner cookies refused; __Host- over HTTPS ----------


def test_f3_forged_and_planted_owner_tokens_are_refused(server, sample_jpeg_bytes):
    url, _ = server
    victim = api_session(url)
    assert upload(victim, url, sample_jpeg_bytes).status_code == 201
    forged = "A" * 43  # well-formed, never issued
    headers = {"X-Requested-With": "x"}
    fixed = requests.post(f"{url}/api/v1/analyses", files={"image": ("a.jpg", sample_jpeg_bytes)},
                          headers={**headers, "Cookie": f"melascan_owner={forged}"}, timeout=60)
    assert fixed.status_code == 403 and fixed.json()["error"]["code"] == "no_owner"
    page = requests.get(f"{url}/main", headers={"Cookie": f"melascan_owner={forged}"}, timeout=30)
    issued = page.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert issued != forged and "." in issued  # replaced by a signed token
    # a cookie planted with a narrower path is sent first: refused, nothing captured
    mine = victim.cookies.get("melascan_owner")
    for planted in (forged, issued):
        both = requests.post(f"{url}/api/v1/analyses", files={"image": ("a.jpg", sample_jpeg_bytes)},
                             headers={**headers, "Cookie": f"melascan_owner={planted}; melascan_owner={mine}"},
                             timeout=60)
        assert both.status_code == 400 and both.json()["error"]["code"] == "two_owner_cookies"
    assert count(victim, url) == 1


def test_f3_host_prefix_over_https(tmp_path):
    app = make_app(tmp_path / "instance", PRELOAD_MODEL=False)
    client = app.test_client()
    cookie = client.get("/main", base_url="https://melascan.example").headers["Set-Cookie"]
    assert cookie.startswith("__Host-melascan_owner=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
    # over HTTPS, only the __Host- cookie (which no other host or path can set) counts
    plain = cookie.split(";")[0].replace("__Host-", "")
    plain_only = app.test_client()
    response = plain_only.get("/main", base_url="https://melascan.example", headers={"Cookie": plain})
    assert response.headers["Set-Cookie"].startswith("__Host-melascan_owner=")


# --- F4: slow clients (slowloris) ---------------------------------------------------------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = ROOT / "deploy" / "nginx-melascan.conf"


def start_nginx(folder: Path, listen_port: int, app_port: int) -> subprocess.Popen:
    """nginx with ``deploy/nginx-melascan.conf``, its two addresses pointed at the test's."""
    site = NGINX_CONF.read_text()
    site = site.replace("server 127.0.0.1:5000;", f"server 127.0.0.1:{app_port};")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    assert str(app_port) in site and str(listen_port) in site, "the shipped config changed its addresses"
    (folder / "site.conf").write_text(site)
    temp = {k: folder / k for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (folder / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        "events { worker_connections 512; }\n"
        f"http {{ access_log off; client_body_temp_path {temp['body']}; proxy_temp_path {temp['proxy']};\n"
        f"fastcgi_temp_path {temp['fastcgi']}; uwsgi_temp_path {temp['uwsgi']}; scgi_temp_path {temp['scgi']};\n"
        f"include {folder}/site.conf; }}\n"
    )
    proc = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx did not start: {proc.stderr.read().decode(errors='replace')}")
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("nginx did not start in 20 s")


def slow_clients(port: int, n_heads: int, n_bodies: int) -> list[socket.socket]:
    """Connections that start a request and then stall (each drips later)."""
    socks = []
    for i in range(n_heads + n_bodies):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i < n_heads:
            s.sendall(b"GET /main HTTP/1.1\r\nHost: x\r\n")
        else:
            s.sendall(b"POST /api/v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                      b"boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n")
        socks.append(s)
    return socks


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes ``sock`` (EOF or reset) within ``seconds``."""
    sock.settimeout(1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except (TimeoutError, socket.timeout):
            continue
        except OSError:  # reset
            return True
    return False


def health_ok(url: str, tries: int = 6, timeout: float = 5.0) -> int:
    ok = 0
    for _ in range(tries):
        try:
            ok += requests.get(f"{url}/api/v1/health", timeout=timeout).status_code == 200
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return ok


@pytest.mark.slow
def test_f4_slow_clients_do_not_stop_the_server_behind_nginx(tmp_path):
    if not Path(NGINX).is_file():
        pytest.skip("nginx is not installed (make test installs Debian's nginx)")
    front_dir = tmp_path / "nginx"
    front_dir.mkdir()
    with serverproc.live_server(tmp_path / "instance", workers=2, threads=2) as (app_url, _):
        port = serverproc.free_port()
        nginx = start_nginx(front_dir, port, int(app_url.rsplit(":", 1)[1]))
        url = f"http://127.0.0.1:{port}"
        socks = slow_clients(port, n_heads=24, n_bodies=8)  # twice the review's 12 (+ its 8 bodies)
        stop = threading.Event()

        def drip() -> None:  # one more header (or body byte) every 4 s, as in the review
            k = 0
            while not stop.wait(4):
                for s in socks:
                    try:
                        s.sendall(b"X-%d: y\r\n" % k)
                    except OSError:
                        pass
                k += 1

        dripper = threading.Thread(target=drip, daemon=True)
        try:
            dripper.start()
            time.sleep(1)
            assert health_ok(url) == 6, "the server stopped answering while slow clients were connected"
            session = api_session(url)
            image = (ROOT / "src/melascan/assets/samples/benign_1.jpg").read_bytes()
            assert upload(session, url, image).status_code == 201  # real work still gets through
            # nginx closes a request head still incomplete after client_header_timeout (10 s)
            assert closed_within(socks[0], 20), "a slow request head was kept open"
        finally:
            stop.set()
            for s in socks:
                s.close()
            nginx.terminate()
            nginx.wait(timeout=10)


# --- F5: storage, memory, rate limit, quota -------------------------------------------


def big_jpeg(width: int = 7744, height: int = 5164) -> bytes:
    """A 40-megapixel JPEG (a brown spot on noisy skin), ~5 MB."""
    rng = np.random.default_rng(0)
    small = np.clip(np.array([222, 178, 158]) + rng.normal(0, 12, (height // 8, width // 8, 3)), 0, 255)
    img = Image.fromarray(small.astype(np.uint8)).resize((width, height))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.slow
def test_f5_a_40_megapixel_upload_is_stored_small_with_bounded_memory(server):
    url, master = server
    session = api_session(url)
    data = big_jpeg()
    response = upload(session, url, data)
    assert response.status_code == 201, response.text[:300]
    body = response.json()
    stored = 0
    for kind, link in body["links"]["images"].items():
        image = session.get(url + link, timeout=30)
        assert image.headers["Content-Type"] == "image/jpeg", kind
        stored += len(image.content)
        if kind == "original":
            assert max(Image.open(io.BytesIO(image.content)).size) <= 1024
    assert stored < 1_500_000, f"{stored} bytes stored for one analysis (was 10.4 MB)"
    workers = serverproc.server_pids(master)[1:]
    peak_mb = max(serverproc.proc_status_kib(Path(f"/proc/{pid}/status"), "VmHWM") for pid in workers) / 1024
    assert peak_mb < 600, f"worker peak memory {peak_mb:.0f} MB (was ~800 MB for one 40 MP upload)"


def test_f5_rate_limit_and_quota_name_their_limits(tmp_path, sample_jpeg_bytes):
    app = make_app(tmp_path / "instance", RATELIMIT_ENABLED=True, ANALYSIS_RATE_LIMIT="3 per minute",
                   MAX_ANALYSES_PER_OWNER=2)
    client = app.test_client()

    def post():
        return client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg_bytes), "a.jpg")},
                           content_type="multipart/form-data")

    assert [post().status_code for _ in range(2)] == [201, 201]
    full = post()
    assert full.status_code == 413 and full.json["error"]["code"] == "quota_exceeded"
    assert "2 analyses" in full.json["error"]["message"]
    limited = post()
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert "3 per 1 minute" in limited.json["error"]["message"] and limited.headers.get("Retry-After")
    # a form with too many parts is refused naming that limit, not the 15 MB one
    parts = client.post("/api/v1/analyses", data={f"f{i}": "x" for i in range(1500)},
                        content_type="multipart/form-data")
    assert parts.status_code in (413, 429)
    app2 = make_app(tmp_path / "instance2", PRELOAD_MODEL=False)
    parts = app2.test_client().post("/api/v1/analyses", data={f"f{i}": "x" for i in range(1500)},
                                    content_type="multipart/form-data")
    assert parts.status_code == 413 and "parts" in parts.json["error"]["message"]
    assert "15 MB" not in parts.json["error"]["message"]


# --- F6: races between an upload and the deletion of its lesion -------------------------


@pytest.fixture
def race_app(tmp_path, any_database):
    config = {"DATABASE_URL": any_database} if any_database else {}
    app = make_app(tmp_path / "instance", **config)
    yield app
    app.extensions["melascan_db"].kw["bind"].dispose()


def test_f6_lesion_deleted_during_an_upload_is_a_409_not_a_500(race_app, sample_jpeg_bytes, monkeypatch):
    app = race_app
    client, other_tab = app.test_client(), app.test_client()
    first = client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg_bytes), "a.jpg")},
                        content_type="multipart/form-data").json["id"]
    client.post(f"/history/{first}/lesion", data={"name": "Back"})
    lesion_id = client.get(f"/api/v1/analyses/{first}").json["tracked_lesion"]["id"]
    other_tab.set_cookie("melascan_owner", client.get_cookie("melascan_owner").value)

    from melascan.web import service

    real = service.run_analysis

    def analysis_during_which_the_lesion_goes(*args, **kwargs):
        result = real(*args, **kwargs)
        assert other_tab.delete(f"/api/v1/analyses/{first}").status_code == 204  # its last analysis
        return result

    monkeypatch.setattr(service, "run_analysis", analysis_during_which_the_lesion_goes)
    response = client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg_bytes), "b.jpg"),
                                                     "lesion_id": lesion_id}, content_type="multipart/form-data")
    assert response.status_code == 409, response.get_data()[:300]
    assert response.json["error"]["code"] == "conflict" and "nothing was saved" in response.json["error"]["message"]
    monkeypatch.setattr(service, "run_analysis", real)
    # renaming or assigning to the deleted lesion: a clear 4xx, never a 500
    assert client.post(f"/history/lesions/{lesion_id}/rename", data={"name": "x"}).status_code == 404
    second = client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg_bytes), "c.jpg")},
                         content_type="multipart/form-data").json["id"]
    assert client.post(f"/history/{second}/lesion", data={"lesion_id": lesion_id}).status_code == 404


@pytest.mark.slow
def test_concurrent_saves_and_deletes_on_postgresql(tmp_path, postgres, sample_jpeg_bytes):
    """Two workers on one PostgreSQL: uploads into a lesion while its analyses are deleted."""
    env = {"MELASCAN_DATABASE_URL": postgres.new_database(), "MELASCAN_RATELIMIT_ENABLED": "false"}
    with serverproc.live_server(tmp_path / "instance", workers=2, threads=2, env=env) as (url, _):
        session = api_session(url)
        first = upload(session, url, sample_jpeg_bytes).json()["id"]
        token = form_token(session, url)
        session.post(f"{url}/history/{first}/lesion", data={"name": "Arm", "csrf_token": token}, timeout=30)
        lesion_id = session.get(f"{url}/api/v1/analyses/{first}", timeout=30).json()["tracked_lesion"]["id"]
        statuses: list[int] = []
        saved: list[str] = []
        deleted: set[str] = set()

        def clone() -> requests.Session:  # one session per thread, the same browser
            other = api_session(url)
            other.cookies.clear()
            other.cookies.update(session.cookies)
            return other

        def uploader() -> None:
            with clone() as mine:
                for _ in range(3):
                    r = upload(mine, url, sample_jpeg_bytes, lesion_id=lesion_id)
                    statuses.append(r.status_code)
                    if r.status_code == 201:
                        saved.append(r.json()["id"])

        def deleter() -> None:
            deadline = time.monotonic() + 120
            while not saved and time.monotonic() < deadline:  # let one upload into the lesion land first
                time.sleep(0.05)
            with clone() as mine:
                for _ in range(8):
                    for row in mine.get(f"{url}/api/v1/analyses", timeout=30).json()["analyses"]:
                        status = mine.delete(f"{url}/api/v1/analyses/{row['id']}", timeout=30).status_code
                        statuses.append(status)
                        if status == 204:
                            deleted.add(row["id"])
                    time.sleep(0.2)

        threads = [threading.Thread(target=uploader) for _ in range(3)] + [threading.Thread(target=deleter)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert 500 not in statuses and set(statuses) <= {201, 204, 404, 409}, statuses
        assert saved, "no upload was saved"
        for analysis_id in saved:  # every acknowledged upload is there, unless deleted on purpose
            expected = 404 if analysis_id in deleted else 200
            assert session.get(f"{url}/api/v1/analyses/{analysis_id}", timeout=30).status_code == expected


# --- F7: CR/LF in a redirect target ------------------------------------------------------


def test_f7_crlf_in_next_is_refused_without_a_500(server):
    url, _ = server
    for target in ("/%0d%0aX-Injected:%20y", "/%0aX-Injected:%20y", "/\\evil.example", "//[", "/%00"):
        response = requests.get(f"{url}/lang/en?next={target}", allow_redirects=False, timeout=30)
        assert response.status_code == 302, (target, response.status_code)
        assert response.headers["Location"].endswith("/main") and "X-Injected" not in response.headers


# --- F8: deleted images must not stay in the browser cache -------------------------------


def test_f8_images_reports_and_history_are_not_cached(server, sample_jpeg_bytes):
    url, _ = server
    session = api_session(url)
    data = upload(session, url, sample_jpeg_bytes).json()
    links = [*data["links"]["images"].values(), data["links"]["pdf"], data["links"]["fhir"], data["links"]["self"],
             "/history", "/api/v1/analyses", data["links"]["page"]]
    for link in links:
        response = session.get(url + link, timeout=60)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", link
    assert session.delete(url + data["links"]["self"], timeout=30).status_code == 204
    assert session.get(url + data["links"]["images"]["original"], timeout=30).status_code == 404


# --- also fragile: names and pagination ---------------------------------------------------


def test_hostile_names_are_cleaned_and_capped(race_app, sample_jpeg_bytes):
    client = race_app.test_client()
    name = "evil\x00name\u202egpj.exe\x07\t" + "x" * 300 + ".jpg"
    created = client.post("/api/v1/analyses", data={"image": (io.BytesIO(sample_jpeg_bytes), name)},
                          content_type="multipart/form-data")
    assert created.status_code == 201, created.get_data()[:300]
    filename = created.json["filename"]
    assert filename.startswith("evilnamegpj.exe x") and filename.endswith("x.jpg") and len(filename) == 255
    assert not any(ch in filename for ch in "\x00\u202e\x07\r\n")
    aid = created.json["id"]
    assert client.post(f"/history/{aid}/lesion", data={"name": "Left\x00 arm \u202e" + "y" * 200}).status_code == 303
    lesion = client.get(f"/api/v1/analyses/{aid}").json["tracked_lesion"]
    assert lesion["name"].startswith("Left arm y") and len(lesion["name"]) == 80
    assert client.post(f"/history/lesions/{lesion['id']}/rename", data={"name": "\x00\u202e "}).status_code == 400


def test_history_and_api_list_are_paginated(race_app):
    app = race_app
    client = app.test_client()
    client.get("/main")
    from melascan.web.owner import current_owner

    result = {"classification": {"probability": 0.1}, "risk": {"level": "low"}}
    with app.test_request_context("/", headers={"Cookie": f"melascan_owner={client.get_cookie('melascan_owner').value}"}):
        owner = current_owner()
        for i in range(120):
            db.save_analysis(owner, f"{i}.jpg", result, {})
    first = client.get("/api/v1/analyses").json
    assert first["count"] == 120 and len(first["analyses"]) == 50 and first["next"]
    rest = client.get(first["next"]).json
    last = client.get(rest["next"]).json
    assert len(rest["analyses"]) == 50 and len(last["analyses"]) == 20 and last["next"] is None
    ids = [a["id"] for page in (first, rest, last) for a in page["analyses"]]
    assert len(set(ids)) == 120
    html = client.get("/history").get_data(as_text=True)
    assert html.count('class="history-item"') == 50 and 'id="history-pager"' in html
    assert client.get("/history?page=3").get_data(as_text=True).count('class="history-item"') == 20
    assert client.get("/history?page=999").status_code == 200
