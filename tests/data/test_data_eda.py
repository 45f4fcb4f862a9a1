"""`melascan eda`: exact mean/std on constant-colour images, figures, report page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from melascan.cli import main
from melascan.data.eda import EdaConfig, PixelStats, has_dark_corners, run_eda_report
from melascan.errors import DataError

# (split, label, colour, (width, height)) -- PNG keeps the colours exact
IMAGES = [
    ("train", "benign", (200, 100, 50), (64, 64)),
    ("train", "benign", (200, 100, 50), (40, 32)),
    ("train", "malignant", (100, 50, 0), (32, 48)),
    ("val", "benign", (10, 20, 30), (32, 32)),
    ("val", "malignant", (250, 250, 250), (32, 32)),
    ("test", "benign", (0, 0, 0), (48, 48)),
    ("test", "malignant", (255, 0, 0), (32, 32)),
]


@pytest.fixture
def make_manifest(write_prepared):
    """Constant-colour PNGs (exact colours) + manifest.csv + summary.json, as `prepare` writes them."""
    def make(root: Path, images=IMAGES) -> Path:
        return write_prepared(root, root.parent / "prepared", [
            (f"{label}/img_{i}.png", label, split, Image.new("RGB", size, colour), "")
            for i, (split, label, colour, size) in enumerate(images)])
    return make


def expected_train_stats():
    """Pixel-weighted mean and population std of the train images, 0-1 scale."""
    values = [np.tile(np.array(c, float), (w * h, 1)) for s, _, c, (w, h) in IMAGES if s == "train"]
    pixels = np.concatenate(values) / 255.0
    return pixels.mean(axis=0), pixels.std(axis=0)


def test_eda_mean_std_are_exact_on_constant_colours(make_manifest, tmp_path):
    manifest = make_manifest(tmp_path / "images")
    out = tmp_path / "eda"
    stats = run_eda_report(EdaConfig(manifest=manifest, out=out, workers=1, progress=False))
    on_disk = json.loads((out / "eda.json").read_text())
    mean, std = expected_train_stats()
    np.testing.assert_allclose(on_disk["rgb_mean"], mean, atol=1e-12)
    np.testing.assert_allclose(on_disk["rgb_std"], std, atol=1e-12)
    assert on_disk["rgb_mean"] == stats["rgb_mean"]
    assert on_disk["train_pixels"] == 64 * 64 + 40 * 32 + 32 * 48
    assert "train" in on_disk["stats_scope"] and "stored resolution" in on_disk["stats_scope"]
    np.testing.assert_allclose(on_disk["per_split"]["val"]["rgb_mean"], np.array([130, 135, 140]) / 255)
    np.testing.assert_allclose(on_disk["per_class_train"]["malignant"]["rgb_mean"], np.array([100, 50, 0]) / 255)
    np.testing.assert_allclose(on_disk["per_class_train"]["malignant"]["rgb_std"], [0, 0, 0], atol=1e-12)
    assert on_disk["counts"]["train"] == {"benign": 2, "malignant": 1, "total": 3}
    assert {(r["width"], r["height"]): r["count"] for r in on_disk["resolutions"]}[(32, 32)] == 3
    hist = json.loads((out / on_disk["histograms_file"]).read_text())
    assert hist["malignant"]["r"][100] == 32 * 48 and sum(hist["benign"]["g"]) == 64 * 64 + 40 * 32


def test_eda_writes_figures_and_an_index_page(make_manifest, tmp_path):
    manifest = make_manifest(tmp_path / "images")
    out = tmp_path / "eda"
    stats = run_eda_report(EdaConfig(manifest=manifest, out=out, workers=2, progress=False, grid_side=2))
    page = (out / "index.html").read_text()
    for name in stats["figures"].values():
        assert (out / name).stat().st_size > 1000
        assert Image.open(out / name).format == "PNG"
        assert f'src="{name}"' in page
    assert "rgb_mean" in page and f"{stats['rgb_mean'][0]:.4f}" in page


def test_pixel_stats_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), rng.integers(0, 256, (33, 35, 3), dtype=np.uint8)
    total = PixelStats()
    total.add(PixelStats.of_image(a))
    total.add(PixelStats.of_image(b))
    both = np.concatenate([a.reshape(-1, 3), b.reshape(-1, 3)]).astype(float) / 255
    np.testing.assert_allclose(total.mean(), both.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(total.std(), both.std(axis=0), atol=1e-12)
    assert PixelStats().mean() is None


def test_has_dark_corners_detects_a_round_vignette():
    yy, xx = np.mgrid[:100, :100]
    disc = (yy - 50) ** 2 + (xx - 50) ** 2 < 48**2
    vignetted = np.where(disc[..., None], 200, 5).astype(np.uint8).repeat(3, axis=2)
    assert has_dark_corners(vignetted)
    assert not has_dark_corners(np.full((100, 100, 3), 180, np.uint8))


def test_eda_reports_missing_images_and_empty_train(make_manifest, tmp_path):
    manifest = make_manifest(tmp_path / "images")
    (tmp_path / "images/benign/img_0.png").unlink()
    with pytest.raises(DataError, match="missing.*img_0.png"):
        run_eda_report(EdaConfig(manifest=manifest, out=tmp_path / "eda", workers=1, progress=False))
    no_train = make_manifest(tmp_path / "other" / "images", [i for i in IMAGES if i[0] != "train"])
    with pytest.raises(DataError, match="train split is empty"):
        run_eda_report(EdaConfig(manifest=no_train, out=tmp_path / "eda2", workers=1, progress=False))


def test_cli_eda_missing_manifest_exits_2(tmp_path, capsys):
    assert main(["eda", str(tmp_path / "none.csv"), "--out", str(tmp_path / "eda")]) == 2
    err = capsys.readouterr().err
    assert "manifest not found" in err and "Traceback" not in err


def test_cli_eda_runs(make_manifest, tmp_path):
    manifest = make_manifest(tmp_path / "images")
    assert main(["eda", str(manifest), "--out", str(tmp_path / "eda"), "--no-progress", "--workers", "1"]) == 0
    assert "rgb_std" in json.loads((tmp_path / "eda/eda.json").read_text())
