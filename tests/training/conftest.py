"""The training tests' config: a seconds-long CPU run on ``tiny_manifest`` (tests/conftest.py)."""

from __future__ import annotations


import pytest

from melascan.training.config import RunConfig


@pytest.fixture
def tiny_config(tiny_manifest, tmp_path) -> RunConfig:
    """A seconds-long CPU run: tiny random-init model at 32 px."""
    return RunConfig(
        model="resnet10t", pretrained="none", drop_rate=0.0, manifest=str(tiny_manifest), eda_json=None,
        image_size=32, cache_dir=str(tmp_path / "cache"), recipe="C4", batch_size=8, epochs=1,
        warmup_epochs=0, lr=1e-3, patience=3, checkpoint_every=0, device="cpu", seed=42, threads=1,
    )
