"""The Flask application factory: configuration, blueprints, errors, headers.

Configuration, later sources winning:
1. ``DEFAULTS`` below;
2. ``<instance>/config.py`` if present (plain ``KEY = value`` lines);
3. environment variables ``MELASCAN_<KEY>`` (e.g. ``MELASCAN_DATABASE_URL``);
4. the ``config`` dict given to ``create_app``.
The instance folder is ``MELASCAN_INSTANCE_PATH`` or ``config["INSTANCE_PATH"]``,
else Flask's default (``./instance`` next to the package, or ``<venv>/var/melascan.web-instance``).
``SECRET_KEY``, when not configured, is generated once and kept in ``<instance>/secret_key``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, request, url_for
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from melascan import __version__
from melascan.errors import ImageError, MelascanError, ModelError
from melascan.web import csrf, db, limits, owner, present
from melascan.web.errors import RequestError, error_response, library_text
from melascan.web.i18n import LANGUAGE_NAMES, LANGUAGES, current_language, js_strings, t
from melascan.web.model import get_classifier, model_status

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 15 * 1024 * 1024,  # whole request body, bytes
    "DATABASE_URL": None,  # None -> sqlite:///<instance>/melascan.db
    "MODEL_PATH": None,  # None -> the embedded model (melascan/assets/model)
    "PRELOAD_MODEL": False,  # load the model when the app is created (``melascan serve``)
    "OWNER_COOKIE": "melascan_owner",
    "OWNER_COOKIE_MAX_AGE": 2 * 365 * 24 * 3600,
    "LANG_COOKIE": "melascan_lang",
    "SAMPLES_DIR": None,  # None -> melascan/assets/samples
    "TRUSTED_PROXIES": 0,  # reverse proxies in front whose X-Forwarded-* headers to believe
    "SESSION_COOKIE_SAMESITE": "Lax",  # the session holds the forms' CSRF token and flashes
}

#: Content-Security-Policy: everything from this origin, nothing inline but images.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _secret_key(instance: Path) -> str:
    """The key in ``<instance>/secret_key``, created (mode 0600) if absent."""
    path = instance / "secret_key"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the MelaScan web app (see the module docstring for configuration)."""
    config = dict(config or {})
    instance_path = config.pop("INSTANCE_PATH", None) or os.environ.get("MELASCAN_INSTANCE_PATH")
    app = Flask(
        "melascan.web",
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
    )
    app.config.update(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("MELASCAN")
    app.config.update(config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(instance)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'melascan.db'}"

    if app.config["TRUSTED_PROXIES"]:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    db.init_app(app)
    owner.init_app(app)
    _register_blueprints(app)
    csrf.init_app(app)  # after the blueprints: it exempts the API's
    limits.init_app(app)
    _register_error_handlers(app)
    _register_template_helpers(app)
    _register_headers(app)

    if app.config["PRELOAD_MODEL"]:
        get_classifier(app.config["MODEL_PATH"])
    return app


def _register_blueprints(app: Flask) -> None:
    from melascan.web.api import bp as api_bp
    from melascan.web.history import bp as history_bp
    from melascan.web.pages import bp as pages_bp
    from melascan.web.reports import bp as reports_bp

    for bp in (pages_bp, api_bp, history_bp, reports_bp):
        app.register_blueprint(bp)


# --- errors -------------------------------------------------------------------------------

#: HTTP status -> the error code clients see (its message: translation ``error.<code>.detail``).
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
}


def _too_large_message(app: Flask) -> str:
    """Which limit a 413 hit: the body size, or the form's part count / field size."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None or request.content_length > limit:
        mb = limit / (1024 * 1024)
        return t("error.too_large.detail", mb=f"{mb:.0f}" if mb >= 1 else f"{mb:.2f}")
    return t("error.too_large.parts", parts=request.max_form_parts, kb=request.max_form_memory_size // 1024)


def _rate_limit_message(exc: HTTPException) -> str:
    """The 429 message with the limit in the reader's words (Flask-Limiter's ``limit.limit``,
    e.g. 60 per 1 minute)."""
    item = getattr(getattr(exc, "limit", None), "limit", None)
    if item is None:
        return t("error.rate_limited.detail_plain")
    unit = t(f"unit.{item.GRANULARITY.name}")
    return t("error.rate_limited.detail", amount=item.amount, multiples=item.multiples, unit=unit)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError):
        return error_response(exc.status, exc.code, exc.message())

    # The library's own messages are English: English pages show them, others a translation.
    @app.errorhandler(ImageError)
    def _image_error(exc: ImageError):
        return error_response(400, "invalid_image", library_text(str(exc), "error.invalid_image.detail"))

    @app.errorhandler(ModelError)
    def _model_error(exc: ModelError):
        log.error("analysis unavailable: %s", exc)
        return error_response(503, "model_unavailable", library_text(str(exc), "error.model_unavailable.detail"))

    @app.errorhandler(MelascanError)
    def _melascan_error(exc: MelascanError):
        return error_response(400, "bad_input", library_text(str(exc), "error.bad_input.detail"))

    @app.errorhandler(OperationalError)
    def _storage_error(exc: OperationalError):
        # The database refused the work (locked, read-only, disk full ...): the server's
        # fault, not the request's. The session is rolled back on teardown.
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        response = app.make_response(error_response(503, "storage_unavailable", t("error.storage_unavailable.detail")))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(IntegrityError)
    @app.errorhandler(StaleDataError)
    def _race(exc: Exception):
        # Another request deleted or changed the same rows between our read and write.
        db.session().rollback()
        log.info("conflict on %s %s: %s", request.method, request.path, exc)
        return error_response(409, "conflict", t("error.conflict.detail"))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        if status == 413:
            message = _too_large_message(app)
        elif status == 429:
            message = _rate_limit_message(exc)
        else:
            message = t(f"error.{code}.detail", status=status)
        response = app.make_response(error_response(status, code, message))
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", t("error.internal_error.detail"))


# --- templates ----------------------------------------------------------------------------


def _register_template_helpers(app: Flask) -> None:
    def asset(filename: str) -> str:
        return url_for("static", filename=filename, v=__version__)

    # Functions are Jinja globals so that imported macros see them too.
    app.jinja_env.globals.update(
        t=t,
        asset=asset,
        version=__version__,
        languages=LANGUAGES,
        language_names=LANGUAGE_NAMES,
        model_status=model_status,
        js_strings=js_strings,
        percent=present.percent,
        advice_key=present.advice_key,
        unfamiliar_note=present.unfamiliar_note,
        driver=present.driver,
        set_name=present.set_name,
        color_palette=present.COLOR_LEGEND,
        number=present.number_text,
        diameter=present.diameter_text,
        feature_rows=lambda lesion: present.feature_rows(lesion, t),
        structure_rows=lambda lesion: present.structure_rows(lesion, t),
        compare_rows=lambda a, b: present.compare_rows(a.result, b.result, t, a.probability, b.probability),
    )

    @app.context_processor
    def _per_request() -> dict[str, Any]:
        return {"lang": current_language()}


def _register_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            # Pages and analyses are personal: never keep them in shared caches.
            response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
        return response
