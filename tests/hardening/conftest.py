"""Fixtures of the hardening tests (helpers: ``hardening_support.py``, importable from here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hardening_support import CASES, ROOT, hostile  # noqa: E402


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """The corpus written to disk (``cases.json`` + one file per case)."""
    folder = tmp_path_factory.mktemp("hostile")
    hostile.write_corpus(folder, CASES)
    return folder


@pytest.fixture(scope="session")
def sample_jpeg() -> bytes:
    return (ROOT / "src" / "melascan" / "assets" / "samples" / "benign_1.jpg").read_bytes()
