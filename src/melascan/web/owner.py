"""The anonymous browser token that owns a history (no accounts).

The first response to a browser sets ``melascan_owner`` = ``secrets.token_urlsafe(32)``
(HttpOnly, SameSite=Lax, Secure over HTTPS, kept two years). The database stores only
its SHA-256, so a leaked database does not reveal the cookies that read it.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from flask import Flask, Response, current_app, g, request

#: What ``token_urlsafe(32)`` produces (43 URL-safe characters); anything else is replaced.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _token() -> str:
    if "owner_token" not in g:
        cookie = request.cookies.get(current_app.config["OWNER_COOKIE"], "")
        g.owner_token_is_new = not _TOKEN_RE.match(cookie)
        g.owner_token = secrets.token_urlsafe(32) if g.owner_token_is_new else cookie
    return g.owner_token


def current_owner() -> str:
    """The owner key of this request: SHA-256 (hex) of the browser token."""
    return hashlib.sha256(_token().encode("ascii")).hexdigest()


def init_app(app: Flask) -> None:
    @app.after_request
    def _set_owner_cookie(response: Response) -> Response:
        _token()
        if g.owner_token_is_new:  # no valid cookie came with the request
            response.set_cookie(
                app.config["OWNER_COOKIE"],
                _token(),
                max_age=app.config["OWNER_COOKIE_MAX_AGE"],
                httponly=True,
                samesite="Lax",
                secure=request.is_secure,
            )
        return response
