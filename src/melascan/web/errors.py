"""Refused requests and the error responses people see, in their language.

``RequestError`` carries an HTTP status, a stable ``code`` and a translation key with its values:
the message is translated when the response is made (``error_response``), so every refusal
reads in the page's language; ``str(exc)`` is the English text, for logs.
The app turns errors into ``{"error": {"code", "message"}}`` for the API and a translated page
for browsers.
"""

from __future__ import annotations

from flask import Response, jsonify, render_template, request

from melascan.errors import MelascanError
from melascan.web.i18n import DEFAULT_LANGUAGE, catalog, current_language, t, translate


class RequestError(MelascanError):
    """A request the server refuses: ``code`` for clients, ``key`` (default
    ``error.<code>.detail``) and ``values`` for the translated message."""

    def __init__(self, code: str, status: int = 400, key: str | None = None, **values: object):
        self.code = code
        self.status = status
        self.key = key or f"error.{code}.detail"
        self.values = values
        super().__init__(translate(self.key, "en", **values))

    def message(self) -> str:
        """The message in the current request's language."""
        return t(self.key, **self.values)


class Conflict(RequestError):
    """Another request changed or deleted the same entry meanwhile (409)."""

    def __init__(self, key: str = "error.conflict.detail", **values: object):
        super().__init__("conflict", 409, key, **values)


def not_found(key: str = "error.not_found.detail", **values: object) -> RequestError:
    """A 404 ``not_found`` saying what was not found (``raise not_found("error.not_found.lesion")``)."""
    return RequestError("not_found", 404, key, **values)


def library_text(text: str, key: str) -> str:
    """A message from the core library or a dependency, which are English: as it is for English
    readers (it names the file and the problem), the translation ``key`` for everyone else."""
    return text if current_language() == DEFAULT_LANGUAGE else t(key)


def wants_json() -> bool:
    """API paths and clients that ask for JSON get JSON errors; browsers get a page."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, message: str) -> tuple[Response | str, int]:
    """``{"error": {"code", "message"}}`` for the API, a translated page otherwise (``message``
    already in the request's language)."""
    if wants_json():
        return jsonify({"error": {"code": code, "message": message}}), status
    title = t(f"error.{code}.title") if f"error.{code}.title" in catalog("en") else t("error.generic.title")
    return render_template("error.html", status=status, code=code, title=title, message=message), status
