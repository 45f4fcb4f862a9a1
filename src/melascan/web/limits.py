"""Limits on what one client can make the server compute and store.

* ``ANALYSIS_RATE_LIMIT`` (default ``60 per minute``): analyses (API, form and samples
  together) per client address, with Flask-Limiter; over it: 429 ``rate_limited`` with
  ``Retry-After``. The counters live in ``RATELIMIT_STORAGE_URI`` (default
  ``memory://``: per worker process; give several workers or machines one shared
  store, e.g. ``redis://``). Behind a reverse proxy set ``TRUSTED_PROXIES`` (app.py) so
  that the address is the client's, not the proxy's.
* ``MAX_ANALYSES_PER_OWNER`` (default 1000): a full history refuses new analyses with
  413 ``quota_exceeded`` until some are deleted. With originals and overlays stored as
  1024 px JPEGs (~0.5 MB per analysis) that bounds one browser at about 0.5 GB.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from melascan.web import db
from melascan.web.errors import RequestError

DEFAULTS = {
    "ANALYSIS_RATE_LIMIT": "60 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,  # Retry-After on 429
    "MAX_ANALYSES_PER_OWNER": 1000,
}

#: The views that run an analysis: one shared budget per client address.
ANALYSIS_ENDPOINTS = ("api.create_analysis", "pages.analyze", "pages.analyze_sample")


def _analysis_rate() -> str:
    return current_app.config["ANALYSIS_RATE_LIMIT"]


def check_quota(owner: str) -> None:
    """``RequestError`` (413) if ``owner``'s history already holds the most analyses allowed."""
    limit = int(current_app.config["MAX_ANALYSES_PER_OWNER"])
    if db.count_analyses(owner) >= limit:
        raise RequestError("quota_exceeded", 413, limit=limit)


def init_app(app: Flask) -> None:
    """One limiter per app (its own counters and settings); call after the blueprints."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    limiter = Limiter(get_remote_address, app=app)
    app.extensions["melascan_limiter"] = limiter
    shared = limiter.shared_limit(_analysis_rate, scope="analyses")
    for endpoint in ANALYSIS_ENDPOINTS:
        app.view_functions[endpoint] = shared(app.view_functions[endpoint])
