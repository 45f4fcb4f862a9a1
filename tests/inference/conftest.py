"""The tiny run (``trained_run``, tests/conftest.py) exported by the real
``melascan export`` command into the model folder every inference test uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory) -> Path:
    """The model folder written by `melascan export RUN --out DIR`."""
    from melascan.cli import main

    out = tmp_path_factory.mktemp("model")
    assert main(["export", str(trained_run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def clf(exported):
    from melascan.inference import Classifier

    return Classifier(exported)


@pytest.fixture(scope="session")
def torch_run(trained_run):
    """``(model, cfg)`` of the run, as training and evaluation see it."""
    from melascan.training.runs import load_run

    return load_run(trained_run)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(123)
