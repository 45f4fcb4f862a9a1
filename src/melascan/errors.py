"""Exceptions that carry a message meant for the user (no traceback is shown)."""


class MelascanError(Exception):
    """Base class: the CLI and the web app show ``str(error)`` to the user."""


class ImageError(MelascanError, ValueError):
    """An input image could not be used (unreadable, truncated, not an image, too large...)."""


class DataError(MelascanError):
    """A data folder, manifest or configuration is missing or inconsistent."""


class ModelError(MelascanError):
    """A model file is missing, corrupt or does not match its model card."""
