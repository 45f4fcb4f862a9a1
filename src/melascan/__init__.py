"""MelaScan: an open-source melanoma screening toolkit."""

__version__ = "0.1.0"
