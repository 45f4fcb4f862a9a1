"""The MelaScan web app (Flask). ``create_app`` builds it; see docs/web.md."""

from __future__ import annotations

from typing import Any


def create_app(config: dict[str, Any] | None = None):
    """Build the Flask app (``melascan.web.app.create_app``; imported lazily)."""
    from melascan.web.app import create_app as _create_app

    return _create_app(config)


__all__ = ["create_app"]
