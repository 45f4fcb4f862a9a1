"""The classifier the app serves: loaded once per process and path, its card, and its status
for banners and the health check."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import current_app, g

from melascan.errors import MelascanError, ModelError

_classifiers: dict = {}  # model path (None: the embedded model) -> Classifier
_load_errors: dict = {}  # model path -> the ModelError its load raised
_classifier_lock = threading.Lock()


def get_classifier(model_path: str | None = None):
    """The classifier of ``model_path``, loaded once per process (gunicorn worker) and path.

    A model that fails to load is not retried on every request (each try re-hashes the
    whole ONNX file under the lock): the error is kept, like a success, until restart.
    """
    with _classifier_lock:
        if model_path in _load_errors:
            raise _load_errors[model_path]
        if model_path not in _classifiers:
            try:
                from melascan.inference import Classifier

                _classifiers[model_path] = Classifier(model_path) if model_path else Classifier.default()
            except ImportError as exc:
                _load_errors[model_path] = ModelError(f"the inference runtime is not installed ({exc})")
                raise _load_errors[model_path] from None
            except ModelError as exc:
                _load_errors[model_path] = exc
                raise
        return _classifiers[model_path]


def check_model(model_path: str | None = None) -> dict:
    """Validate the model card and file checksums without loading onnxruntime; the card."""
    try:
        from melascan.inference.card import load_card, verify_files
        from melascan.inference.classifier import default_model_dir
    except ImportError as exc:
        raise ModelError(f"the inference runtime is not installed ({exc})") from None
    path = Path(model_path) if model_path else default_model_dir()
    folder = path if path.is_dir() else path.parent
    card = load_card(folder)
    verify_files(card, folder)
    return card


def model_card(model_path: str | None = None) -> dict:
    """The model card of the classifier the app uses."""
    return get_classifier(model_path).card


def model_status() -> dict[str, Any]:
    """``{"status": trained|untrained|unavailable, "name", "message"}`` for banners (once per request)."""
    if "model_status" in g:
        return g.model_status
    try:
        card = model_card(current_app.config["MODEL_PATH"])
        g.model_status = {"status": card.get("status"), "name": card.get("name"), "message": ""}
    except MelascanError as exc:
        g.model_status = {"status": "unavailable", "name": None, "message": str(exc)}
    return g.model_status
