"""Fixtures of the hardening tests (helpers: ``hardening_support.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hardening_support import CASES, ROOT

from melascan.web.hostile_corpus import write_corpus


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """The corpus written to disk (``cases.json`` + one file per case)."""
    folder = tmp_path_factory.mktemp("hostile")
    write_corpus(folder, CASES)
    return folder


@pytest.fixture(scope="session")
def sample_jpeg() -> bytes:
    return (ROOT / "src" / "melascan" / "assets" / "samples" / "benign_1.jpg").read_bytes()
