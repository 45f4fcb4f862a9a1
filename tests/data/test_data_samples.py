"""Sample images shipped with the web app (melascan/assets/samples)."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from melascan.data.prepare import PrepareConfig, prepare
from melascan.data.samples import export_samples
from melascan.errors import DataError
from melascan.imageio import load_rgb


def test_shipped_samples_are_listed_and_readable():
    folder = resources.files("melascan") / "assets" / "samples"
    meta = json.loads((folder / "samples.json").read_text())
    samples = meta["samples"]
    assert sorted(s["label"] for s in samples) == ["benign"] * 4 + ["malignant"] * 4
    for s in samples:
        assert s["file"].startswith(s["label"] + "_") and s["manifest_split"] == "test"
        rgb = load_rgb((folder / s["file"]).read_bytes())
        assert rgb.ndim == 3 and min(rgb.shape[:2]) >= 32


def test_export_copies_original_bytes_of_test_images(dataset, tmp_path):
    prepare(PrepareConfig(src=dataset, out=tmp_path / "prep", malignant=10, benign=10,
                          ratios=(0.4, 0.2, 0.4), workers=1, progress=False))
    out = tmp_path / "samples"
    samples = export_samples(tmp_path / "prep" / "manifest.csv", out, per_class=2)
    assert [s["file"] for s in samples] == ["benign_1.jpg", "benign_2.jpg", "malignant_1.jpg", "malignant_2.jpg"]
    for s in samples:
        assert (out / s["file"]).read_bytes() == (dataset / s["source_path"]).read_bytes()
    meta = json.loads((out / "samples.json").read_text())
    assert meta["samples"] == samples
    with pytest.raises(DataError, match="not in the test split"):
        export_samples(tmp_path / "prep" / "manifest.csv", out, pick=["train/benign/nothere.jpg"])
