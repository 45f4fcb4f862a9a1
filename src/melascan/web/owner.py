"""The anonymous browser token that owns a history (no accounts).

Only the server mints tokens: ``secrets.token_urlsafe(32)`` signed with ``SECRET_KEY``
(itsdangerous), so a cookie the server never issued is refused (no token fixation).
The database stores only the SHA-256 of the unsigned token, so a leaked database does
not reveal the cookies that read it.

The cookie (``melascan_owner``; ``__Host-melascan_owner`` over HTTPS, which no other
host or path can set) is HttpOnly, SameSite=Lax, Path=/, Secure over HTTPS, kept two
years. It is only issued by a successful GET without one: an error, or a POST from
another site, never replaces a visitor's cookie. A state-changing request without a
valid cookie is refused (403 ``no_owner``), and so is any request carrying two owner
cookies (400 ``two_owner_cookies``: one was planted with a narrower path).
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from melascan.web.csrf import UNSAFE_METHODS
from melascan.web.errors import RequestError

#: Requests that may receive a new cookie (when they succeed).
_ISSUING_METHODS = ("GET", "HEAD")


def cookie_name() -> str:
    """``__Host-`` + the configured name over HTTPS, the plain name otherwise."""
    name = current_app.config["OWNER_COOKIE"]
    return f"__Host-{name}" if request.is_secure else name


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="melascan.owner")


def _unsign(cookie: str) -> str | None:
    """The token inside a cookie the server signed, else ``None``."""
    try:
        token = _serializer().loads(cookie)
    except BadSignature:
        return None
    return token if isinstance(token, str) and len(token) == 43 else None


def _token() -> str:
    if "owner_token" not in g:
        values = request.cookies.getlist(cookie_name())
        token = _unsign(values[0]) if len(values) == 1 else None
        g.owner_token_is_new = token is None
        g.owner_token = token or secrets.token_urlsafe(32)
    return g.owner_token


def current_owner() -> str:
    """The owner key of this request: SHA-256 (hex) of the browser token.

    A request that changes something must bring a cookie the server issued.
    """
    token = _token()
    if g.owner_token_is_new and request.method in UNSAFE_METHODS:
        raise RequestError("no_owner", 403)
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def init_app(app: Flask) -> None:
    @app.before_request
    def _check_owner_cookie() -> None:
        if len(request.cookies.getlist(cookie_name())) > 1:
            raise RequestError("two_owner_cookies", 400)
        if request.method in UNSAFE_METHODS and request.routing_exception is None:
            current_owner()  # refuse a change without a valid cookie before any work

    @app.after_request
    def _set_owner_cookie(response: Response) -> Response:
        if request.method not in _ISSUING_METHODS or response.status_code >= 400:
            return response
        _token()
        if g.owner_token_is_new:  # no valid cookie came with the request
            response.set_cookie(
                cookie_name(),
                _serializer().dumps(_token()),
                max_age=app.config["OWNER_COOKIE_MAX_AGE"],
                path="/",
                httponly=True,
                samesite="Lax",
                secure=request.is_secure,
            )
        return response
