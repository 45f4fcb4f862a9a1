"""Korean and English UI strings: one JSON catalog per language, one ``t()`` helper.

``translations/en.json`` and ``translations/ko.json`` hold every user-visible string
under the same keys (a test checks they match and that templates use no unknown key).
The language comes from the ``melascan_lang`` cookie (set by the toggle), else from
the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from flask import current_app, g, request

LANGUAGES = ("en", "ko")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """The flat ``key -> text`` table of ``lang`` (read once per process)."""
    text = resources.files("melascan.web").joinpath("translations", f"{lang}.json").read_text("utf-8")
    return json.loads(text)


def translate(key: str, lang: str, **values: object) -> str:
    """``key`` in ``lang``, formatted with ``values``; falls back to English, then to the key."""
    text = catalog(lang).get(key) or catalog(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**values) if values else text


def choose_language() -> str:
    """The language of the current request: cookie, then Accept-Language, then English."""
    cookie = request.cookies.get(current_app.config["LANG_COOKIE"])
    if cookie in LANGUAGES:
        return cookie
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def current_language() -> str:
    if "lang" not in g:
        g.lang = choose_language()
    return g.lang


def t(key: str, **values: object) -> str:
    """Translate ``key`` into the current request's language (used in templates and views)."""
    return translate(key, current_language(), **values)


def js_strings() -> dict[str, str]:
    """The strings the browser script needs: keys starting with ``js.``, ``error.``, ``level.``."""
    lang = current_language()
    prefixes = ("js.", "error.", "level.")
    return {k: translate(k, lang) for k in catalog(DEFAULT_LANGUAGE) if k.startswith(prefixes)}
