"""``RequestError``: a refused request, with its HTTP status and a stable ``code``.

The app turns it into ``{"error": {"code", "message"}}`` for the API and a translated
page for browsers (``app.error_response``).
"""

from __future__ import annotations

from melascan.errors import MelascanError


class RequestError(MelascanError):
    """A request the server refuses; ``str(exc)`` is the message shown to the user."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


class Conflict(RequestError):
    """Another request changed or deleted the same entry meanwhile (409)."""

    def __init__(self, message: str):
        super().__init__("conflict", message, 409)
