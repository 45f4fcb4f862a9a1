"""``melascan analyze``: the stable JSONL + masks interface, errors, the classifier."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from melascan.cli import main
from melascan.imageio import load_rgb
from melascan.lesion import analyze_lesion

LESION_KEYS = {"asymmetry", "border", "colors", "diameter_px", "tds", "tds_band"}


def _write(path, rgb, ext=".png"):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path.with_suffix(ext)), rgb[:, :, ::-1])
    return path.with_suffix(ext)


@pytest.fixture
def folder(tmp_path, synth):
    root = tmp_path / "images"
    _write(root / "IMD002", synth.disc_image(radius=50))
    _write(root / "sub" / "IMD002", synth.ellipse_image(size=240))  # same stem, other folder
    _write(root / "sub" / "lesion_b", synth.two_color_image(), ext=".jpg")
    (root / "bad.png").write_bytes(b"this is not a png")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return root


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_to_jsonl_and_masks(folder, tmp_path, capsys):
    out, masks = tmp_path / "out.jsonl", tmp_path / "masks"
    rc = main(["analyze", str(folder), "--jsonl", str(out), "--masks-dir", str(masks), "--no-classify",
               "--mm-per-px", "0.03"])  # fmt: skip
    assert rc == 0
    records = _records(out)
    assert [r["path"] for r in records] == [
        str(folder / "IMD002.png"),
        str(folder / "bad.png"),
        str(folder / "sub" / "IMD002.png"),
        str(folder / "sub" / "lesion_b.jpg"),
    ]
    bad = records[1]
    assert set(bad) == {"path", "error"} and "bad.png" in bad["error"]
    assert "bad.png" in capsys.readouterr().err

    good = [r for r in records if "error" not in r]
    for r in good:
        assert r["probability"] is None  # --no-classify
        assert LESION_KEYS <= set(r["lesion"])
        assert r["lesion"]["diameter_mm"] == pytest.approx(r["lesion"]["diameter_px"] * 0.03, rel=1e-3)
    assert sorted(p.name for p in masks.iterdir()) == ["IMD002.png", "lesion_b.png", "sub__IMD002.png"]
    for r in good:
        image = load_rgb(r["path"])
        mask = cv2.imread(r["mask"], cv2.IMREAD_UNCHANGED)
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask > 0, analyze_lesion(image).mask)  # the same mask as the API


def test_overlays_dir(folder, tmp_path):
    overlays = tmp_path / "overlays"
    rc = main(["analyze", str(folder / "IMD002.png"), "--json", "--overlays-dir", str(overlays), "--no-classify"])
    assert rc == 0
    names = sorted(p.name for p in overlays.iterdir())
    assert names == ["IMD002_axes.png", "IMD002_colors.png", "IMD002_contour.png", "IMD002_structures.png"]
    assert cv2.imread(str(overlays / "IMD002_axes.png")).shape == (300, 300, 3)


def test_single_image_json_to_stdout(folder, capsys):
    assert main(["analyze", str(folder / "sub" / "lesion_b.jpg"), "--json", "--no-classify"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["lesion"]["colors"] == ["light_brown", "dark_brown"]


def test_default_output_is_one_line_per_image(folder, capsys):
    assert main(["analyze", str(folder), "--no-classify"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and "ERROR" in lines[1] and "TDS=" in lines[0]
    assert "7-point=" in lines[0] and "structures: " in lines[0]


def test_single_bad_file_fails_with_a_message(folder, capsys):
    assert main(["analyze", str(folder / "bad.png"), "--no-classify"]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_missing_input_and_bad_scale(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope.png"), "--no-classify"]) == 2
    assert "nope.png" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(tmp_path), "--mm-per-px", "-1"])
    assert exc.value.code == 2


def test_unavailable_classifier_is_a_clear_error(folder, capsys, monkeypatch):
    import melascan.inference
    from melascan.errors import ModelError

    def broken():
        raise ModelError("model file missing")

    monkeypatch.setattr(melascan.inference.Classifier, "default", staticmethod(broken))
    assert main(["analyze", str(folder / "IMD002.png")]) == 2
    err = capsys.readouterr().err
    assert "model file missing" in err and "--no-classify" in err


def _classifier_or_skip():
    try:
        from melascan.inference import Classifier

        return Classifier.default()
    except Exception as exc:  # the embedded model is built by another stage
        pytest.skip(f"embedded classifier not available: {exc}")


def test_with_the_embedded_classifier(folder, tmp_path):
    _classifier_or_skip()
    out = tmp_path / "with_model.jsonl"
    assert main(["analyze", str(folder / "sub"), "--jsonl", str(out)]) == 0
    for record in _records(out):
        assert 0.0 <= record["probability"] <= 1.0
        assert set(record["labels"]) >= {"balanced", "screening"}
        assert LESION_KEYS <= set(record["lesion"])
