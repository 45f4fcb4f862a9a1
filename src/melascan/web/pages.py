"""The HTML pages of the seed's flow: splash -> intro -> start -> main/samples -> result."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from melascan import __version__
from melascan.web import db
from melascan.web.i18n import LANGUAGES
from melascan.web.owner import current_owner
from melascan.web.samples import get_sample, list_samples
from melascan.web.scale import scale_from_form
from melascan.web.service import analyze_and_store, lesion_from_form
from melascan.web.uploads import read_upload

bp = Blueprint("pages", __name__)


@bp.get("/")
def splash():
    return render_template("splash.html")


@bp.get("/intro")
def intro():
    return render_template("intro.html")


@bp.get("/start")
def start():
    return render_template("start.html")


@bp.get("/main")
def main():
    return render_template("main.html", lesions=db.list_lesions(current_owner()))


@bp.get("/samples")
def samples():
    return render_template("samples.html", samples=list_samples())


@bp.get("/samples/<slug>/image")
def sample_image(slug: str):
    sample = get_sample(slug) or abort(404)
    return send_file(sample.path, max_age=24 * 3600)


@bp.post("/samples/<slug>")
def analyze_sample(slug: str):
    """Analyse a shipped sample as if it had been uploaded, then show the result."""
    sample = get_sample(slug) or abort(404)
    row = analyze_and_store(sample.path.read_bytes(), sample.filename,
                            sample={"label": sample.label, "source": sample.extra.get("source")})
    return redirect(url_for("pages.result", analysis_id=row.id), code=303)


@bp.post("/analyze")
def analyze():
    """The form upload (works without JavaScript); the page script uses the API instead."""
    data, filename = read_upload(request)
    row = analyze_and_store(data, filename, lesion_from_form(), mm_per_px=scale_from_form(request.form))
    return redirect(url_for("pages.result", analysis_id=row.id), code=303)


@bp.get("/results/<analysis_id>")
def result(analysis_id: str):
    owner = current_owner()
    row = db.get_analysis(owner, analysis_id) or abort(404)
    return render_template("result.html", row=row, r=row.result, lesions=db.list_lesions(owner))


@bp.get("/results/<analysis_id>/images/<kind>")
def image(analysis_id: str, kind: str):
    stored = db.get_image(current_owner(), analysis_id, kind) or abort(404)
    response = Response(stored.data, mimetype=stored.mime)
    # no-store: a deleted image must not stay readable from the browser's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_local_path(target: str) -> bool:
    """A path on this site: no scheme or host (no open redirect), no control characters
    (CR/LF would inject headers)."""
    if not target.startswith("/") or target[1:2] in ("/", "\\"):  # //host and /\host
        return False
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    try:
        parts = urlsplit(target)
    except ValueError:
        return False
    return not (parts.scheme or parts.netloc)


@bp.get("/lang/<code>")
def set_language(code: str):
    """The language toggle: remember the choice in a cookie and go back."""
    if code not in LANGUAGES:
        abort(404)
    target = request.args.get("next", "")
    response = redirect(target if _is_local_path(target) else url_for("pages.main"))
    response.set_cookie(
        current_app.config["LANG_COOKIE"], code, max_age=365 * 24 * 3600, samesite="Lax",
        secure=request.is_secure,
    )
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    response = current_app.send_static_file("manifest.webmanifest")
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker():
    """Served from the root so that its scope is the whole app."""
    response = current_app.send_static_file("js/sw.js")
    response.direct_passthrough = False
    # A new release must change the worker's bytes, or phones keep the old cached shell.
    body = response.get_data(as_text=True).replace("melascan-shell-v1", f"melascan-shell-{__version__}")
    response.set_data(body)
    response.add_etag(overwrite=True)
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response

