"""Cross-site request forgery: a state-changing request must come from this site.

Every POST, PUT, PATCH and DELETE passes three checks (403 ``csrf_failed`` otherwise):

1. Fetch metadata: a browser's ``Sec-Fetch-Site`` must be ``same-origin`` (or ``none``,
   typed by the user), and ``Origin``, when sent, must be this server's origin. This
   also refuses *same-site* senders (another port, a sibling subdomain) that the
   SameSite=Lax cookie lets through.
2. Forms: Flask-WTF's token (hidden field ``csrf_token``, bound to the session).
3. The JSON API (``/api/``): the header ``X-Requested-With`` (any value). No HTML form
   can send it, and a script on another origin cannot send it without a CORS preflight
   that this server never grants. Non-browser clients just add it
   (``curl -H 'X-Requested-With: curl' ...``).
"""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup, escape

from melascan.web.errors import RequestError, error_response, library_text
from melascan.web.i18n import t

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_HEADER = "X-Requested-With"

csrf = CSRFProtect()


def _refuse(reason: str, **values: object) -> RequestError:
    return RequestError("csrf_failed", 403, f"error.csrf_failed.{reason}", **values)


def check_origin() -> None:
    """Step 1: refuse a request that a browser says came from another origin."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise _refuse("other_site", site=site)
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise _refuse("origin")


def csrf_field() -> Markup:
    """The hidden form field every POST form carries."""
    from flask_wtf.csrf import generate_csrf

    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">')


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the browser session

    @app.before_request
    def _check_request() -> None:
        if request.method not in UNSAFE_METHODS:
            return
        check_origin()
        if request.blueprint == "api" and not request.headers.get(API_HEADER):
            raise _refuse("api_header", header=API_HEADER)

    csrf.init_app(app)
    csrf.exempt(app.blueprints["api"])  # step 3 instead of a session token

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        reason = library_text(exc.description, "error.csrf_failed.token_reason")
        return error_response(403, "csrf_failed", t("error.csrf_failed.token", detail=reason))

    app.jinja_env.globals["csrf_field"] = csrf_field
