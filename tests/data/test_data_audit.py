"""The shortcut audit finds a planted shortcut (a black frame on every malignant image)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from melascan.cli import main
from melascan.data.audit import cross_validated_auc, frame_fractions, image_cues, jpeg_quality, lesion_framing


def _manifest(write_prepared, root, n=40):
    """Half the images from source "a", half from "b"; malignant ones carry a dark vignette."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        label = "malignant" if i % 2 else "benign"
        rgb = rng.integers(90, 220, (48, 48, 3), dtype=np.uint8)
        if label == "malignant":  # the shortcut: a dark vignette
            yy, xx = np.mgrid[:48, :48]
            rgb[(yy - 23.5) ** 2 + (xx - 23.5) ** 2 > 22**2] = 5
        images.append((f"img_{i:03d}.jpg", label, "train", rgb, "a" if i < n // 2 else "b"))
    return write_prepared(root, root, images)


def test_embedding_probe_finds_a_planted_source_and_keeps_groups_in_one_fold():
    """A network's features with the source written into one channel: found; without it: chance.
    Memorising a group (a lesion photographed many times) must not help: with ``groups``
    every image of a lesion is scored by a model that never saw that lesion."""
    rng = np.random.default_rng(0)
    source = np.repeat([0, 1], 100)
    noise = rng.normal(size=(200, 16))
    planted = noise.copy()
    planted[:, 3] += 3.0 * source
    assert cross_validated_auc(planted, source, "embedding") > 0.95
    assert abs(cross_validated_auc(noise, source, "embedding") - 0.5) < 0.15
    # 20 lesions of 10 near-identical pictures each; the label is the lesion's, features say only "which lesion"
    lesion = np.repeat(np.arange(20), 10)
    label = (lesion % 2).astype(int)
    x = rng.normal(size=(20, 16))[lesion] + 0.01 * rng.normal(size=(200, 16))
    assert cross_validated_auc(x, label, "embedding") > 0.95  # leaks: each lesion sits in every fold
    assert cross_validated_auc(x, label, "embedding", groups=lesion) < 0.8


def test_cue_functions():
    rgb = np.full((100, 100, 3), 200, np.uint8)
    assert frame_fractions(rgb) == (0.0, 0.0)
    rgb[:, :12] = 0
    ring, corners = frame_fractions(rgb)
    assert 0.2 < ring < 0.6 and abs(corners - 0.4) < 1e-9  # 12 of 15 columns in the two left corners


def test_audit_reports_the_planted_frame_shortcut(write_prepared, tmp_path):
    manifest = _manifest(write_prepared, tmp_path)
    with Image.open(tmp_path / "img_000.jpg") as im:
        assert 85 <= jpeg_quality(im) <= 95
    out = tmp_path / "audit"
    assert main(["audit", f"toy={manifest}", "--out", str(out), "--workers", "1"]) == 0
    data = json.loads((out / "audit.json").read_text())["toy"]
    auc = {(r["cues"], r["target"], r["subset"]): r["auc"] for r in data["rows"]}
    assert auc[("frame", "label", "all")] > 0.95
    assert auc[("jpeg", "label", "all")] < 0.75  # every image was saved at the same quality
    assert ("frame", "label", "a") in auc and any(t.startswith("source") for _, t, _ in auc)
    assert (out / "audit.png").is_file() and "| frame |" in (out / "audit.md").read_text()


def test_lesion_framing_measures_share_box_and_offset():
    mask = np.zeros((100, 200), bool)
    mask[10:30, 120:160] = True  # 20 x 40 px, centre (140, 20)
    area, box_w, box_h, off_x, off_y, found = lesion_framing(mask)
    assert area == 800 / 20000 and box_w == 0.2 and box_h == 0.2 and found == 1.0
    assert off_x == 40 / 200 and off_y == 30 / 100
    assert lesion_framing(np.zeros((10, 10), bool)) == [0.0] * 6


def test_a_picture_too_small_for_the_lesion_analysis_gets_no_framing(tmp_path):
    path = tmp_path / "tiny.jpg"
    Image.fromarray(np.full((10, 12, 3), 120, np.uint8)).save(path)
    assert image_cues(str(path))["framing"] == [0.0] * 6
