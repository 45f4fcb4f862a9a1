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


def test_the_catalogue_reads_what_it_writes_and_keeps_names_inside_its_folder(tmp_path):
    from melascan.data.sample_catalogue import read_catalogue, write_catalogue

    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path.parent / "outside.jpg").write_bytes(b"x")
    write_catalogue(tmp_path, [{"file": "a.jpg", "label": "malignant", "md5": "m"},
                               {"file": "../outside.jpg", "label": "benign"},
                               {"file": "missing.jpg", "label": "benign"}], source="test", selection="all")
    [entry] = read_catalogue(tmp_path)
    assert (entry.path, entry.label, entry.fields["md5"]) == ((tmp_path / "a.jpg").resolve(), "malignant", "m")
    with pytest.raises(DataError, match="label"):
        write_catalogue(tmp_path, [{"file": "a.jpg", "label": "melanoma"}], source="test", selection="all")
    (tmp_path / "samples.json").write_text("{not json")
    with pytest.raises(DataError, match="not a sample catalogue"):
        read_catalogue(tmp_path)
    shipped = read_catalogue(resources.files("melascan") / "assets" / "samples")
    assert sorted(e.label for e in shipped) == ["benign"] * 4 + ["malignant"] * 4
