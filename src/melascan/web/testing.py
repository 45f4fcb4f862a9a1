"""Clients for tests and benchmarks that behave like a browser that loaded the page first.

A real browser holds the owner cookie (issued by the first page it loaded), posts
forms with their hidden CSRF token, and the page's script sends the API header. These
clients do the same, so that tests of other behaviour need not repeat it; the CSRF and
cookie tests use plain clients.
"""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from melascan.web.csrf import API_HEADER, UNSAFE_METHODS

_TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class BrowserClient(FlaskClient):
    """A Flask test client with the owner cookie, the form token and the API header."""

    _csrf_token: str | None = None

    def _form_token(self) -> str:
        """Load the main page once, as a browser does first: the owner cookie and the form token."""
        if self._csrf_token is None:
            html = super().open("/main").get_data(as_text=True)
            self._csrf_token = _TOKEN_RE.search(html).group(1)
        return self._csrf_token

    def open(self, *args: Any, **kwargs: Any):
        method = str(kwargs.get("method", "GET")).upper()
        path = args[0] if args and isinstance(args[0], str) else ""
        if method in UNSAFE_METHODS and path:
            if path.startswith("/api/"):
                if self.get_cookie(self.application.config["OWNER_COOKIE"]) is None:
                    self._form_token()
                kwargs["headers"] = {API_HEADER: "test", **dict(kwargs.get("headers") or {})}
            else:
                token = self._form_token()
                data = kwargs.get("data")
                if data is None:
                    kwargs["data"] = {"csrf_token": token}
                elif isinstance(data, dict) and "csrf_token" not in data:
                    kwargs["data"] = {**data, "csrf_token": token}
        return super().open(*args, **kwargs)


def api_session(base_url: str, timeout: float = 30):
    """A ``requests.Session`` holding an owner cookie and sending the API header."""
    import requests

    session = requests.Session()
    session.headers[API_HEADER] = "requests"
    session.get(f"{base_url}/api/v1/health", timeout=timeout).raise_for_status()
    return session
