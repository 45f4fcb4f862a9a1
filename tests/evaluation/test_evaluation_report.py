"""Figures, report and the folder / leakage helpers, on a synthetic run folder.

The run folder (config.yaml, data.json, summary.json, history.csv) and the logits are
test data written here; everything that reads them is the real code.
"""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from melascan.data import dedup
from melascan.data.manifest import read_manifest, seeded_subset
from melascan.errors import DataError
from melascan.evaluation import evaluate as E
from melascan.evaluation import targets as T
from melascan.evaluation import figures as F
from melascan.runfolder import RunFolder
from melascan.evaluation.report import fmt, fmt_ci, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

HISTORY = """epoch,train_loss,train_acc,train_f1,val_loss,val_acc,val_f1,val_auc,lr,seconds
1,0.69,0.55,0.50,0.68,0.58,0.52,0.61,0.0003,10.1
2,0.60,0.66,0.63,0.62,0.64,0.60,0.70,0.0003,9.8
3,0.52,0.73,0.71,0.60,0.67,0.64,0.74,0.0002,9.9
4,0.45,0.79,0.78,0.63,0.66,0.63,0.73,0.0001,10.0
"""


def assert_png(path):
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 2000, path


def toy_logits(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    margin = 4.0 * (y - 0.5 + rng.normal(0, 0.45, n))  # AUC ~ 0.9
    return y, np.stack([np.zeros(n), margin], axis=1)


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "runs" / "toy"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("model: resnet10t\nimage_size: 64\nrecipe: C4\nlr: 0.0003\n")
    (run / "data.json").write_text(json.dumps({"manifest": "data/manifest.csv", "class_counts": {"val": {"benign": 60}}}))
    (run / "summary.json").write_text(json.dumps({"best_epoch": 3, "stopped_epoch": 4, "early_stopped": True}))
    (run / "history.csv").write_text(HISTORY)
    return run


def test_every_figure_is_written(tmp_path):
    y, z = toy_logits(120, 0)
    p_raw = 1 / (1 + np.exp(-z[:, 1]))
    p_cal = 1 / (1 + np.exp(-z[:, 1] / 4))
    ops = {"0.5": 0.5, "balanced": 0.45, "screening": 0.2}
    (tmp_path / "history.csv").write_text(HISTORY)
    hist = F.history_arrays(RunFolder(tmp_path).read_history())
    assert hist["val_auc"].tolist() == [0.61, 0.70, 0.74, 0.73]
    for path in (
        F.plot_training_curves(hist, tmp_path / "curves.png", best_epoch=3, stopped_epoch=4),
        F.plot_confusion_matrix(y, p_cal, 0.5, tmp_path / "cm.png"),
        F.plot_roc(y, p_cal, tmp_path / "roc.png", operating_points=ops),
        F.plot_pr(y, p_cal, tmp_path / "pr.png", operating_points=ops),
        F.plot_reliability(y, p_raw, p_cal, tmp_path / "sub" / "rel.png", temperature=4.0),
    ):
        assert_png(path)


def test_evaluate_logits_and_report(run_dir):
    val_y, val_z = toy_logits(300, 1)
    y, z = toy_logits(200, 2)
    target = T.Target("test", {"kind": "split", "split": "test", "manifest": "m.csv"}, run_dir,
                      [f"img_{i}.jpg" for i in range(200)], y)
    leaked = np.zeros(200, bool)
    leaked[:7] = True
    rows = [dict(path=f"img_{i}.jpg", label="benign", split="test", ref_path=f"tr_{i}.jpg", ref_label="benign",
                 ref_split="train", kind="exact", distance=0) for i in range(7)]
    leakage = T.leakage_summary(target, leaked, rows, max_distance=None)
    result = E.evaluate_logits(
        run_dir / "eval" / "test", target, z, val_y, val_z,
        tta_logits=0.8 * z, tta_val_logits=0.8 * val_z,
        leaked=leaked, leak_rows=rows, leakage=leakage,
        info={"command": "melascan evaluate runs/toy --split test --tta"}, n_bootstrap=100,
    )
    out = run_dir / "eval" / "test"
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert metrics["n_images"] == 200 and metrics["leakage"]["n_exact"] == 7
    assert metrics["calibration"]["temperature"] == pytest.approx(result["calibration"]["temperature"])
    assert metrics["calibration"]["validation"]["nll_after"] <= metrics["calibration"]["validation"]["nll_before"]
    assert set(metrics["plain"]["thresholds"]) == {"0.5", "balanced", "screening"}
    assert metrics["without_leaked"]["n_images"] == 193 and "tta" in metrics["without_leaked"]
    with open(out / "predictions.csv", newline="") as fh:
        pred = list(csv.DictReader(fh))
    assert len(pred) == 200
    assert list(pred[0]) == ["path", "label", "logit0", "logit1", "probability",
                             "tta_logit0", "tta_logit1", "tta_probability", "leaked"]
    assert sum(int(r["leaked"]) for r in pred) == 7
    assert (out / "leakage.csv").read_text().count(",exact,") == 7
    for variant in ("plain", "tta"):
        for fig in metrics["figures"][variant]:
            assert_png(out / fig)

    (run_dir / "calibration.json").write_text(json.dumps(result["calibration"]))
    md, page = write_report(run_dir)
    text = md.read_text()
    for needle in ("ROC-AUC", "screening", "balanced", "Youden", "melascan evaluate runs/toy --split test --tta",
                   "melascan train --config", "Without the 7 leaked images", "best_epoch", "resnet10t"):
        assert needle in text, needle
    assert_png(run_dir / "figures" / "training_curves.png")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html
    for src in [s.split('"')[0] for s in html.split('<img src="')[1:]]:
        assert_png(run_dir / src)


def test_report_without_evaluations(run_dir):
    md, page = write_report(run_dir)
    assert "No evaluation yet" in md.read_text() and page.stat().st_size > 0


def test_formatting():
    assert fmt(0.123456) == "0.1235" and fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt(3) == "3"
    assert fmt_ci(0.9, [0.85, 0.95]) == "0.9000 [0.8500, 0.9500]"


# --- folders and the leakage guard -----------------------------------------------------------


def blob_image(seed: int, size: int = 96) -> np.ndarray:
    """A smooth synthetic 'lesion': a few coloured Gaussian blobs on skin colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.ones((size, size, 3)) * np.array([0.85, 0.65, 0.55])
    for _ in range(4):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.25)
        w = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))[..., None]
        img = img * (1 - w) + w * rng.uniform(0.1, 0.6, 3)
    return (img * 255).astype(np.uint8)


def save(rgb, path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)
    return path


def test_folder_target_any_nesting(tmp_path):
    root = tmp_path / "external"
    save(blob_image(1), root / "benign" / "a.png")
    save(blob_image(2), root / "site1" / "Malignant" / "deep" / "b.jpg")
    save(blob_image(3), root / "unlabelled" / "c.png")
    (root / "benign" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    t, images = T.folder_target(root)
    assert t.paths == ["benign/a.png", "site1/Malignant/deep/b.jpg"]
    assert t.labels.tolist() == [0, 1]
    assert t.name == "external" and t.source["ignored_outside_class_folders"] == 1
    assert [s["path"] for s in t.skipped] == ["benign/broken.jpg"]
    assert images["benign/a.png"].md5 == dedup.md5_file(root / "benign" / "a.png")
    with pytest.raises(DataError):
        T.folder_target(root / "unlabelled")
    with pytest.raises(DataError, match="not found"):
        T.folder_target(tmp_path / "missing")


def make_manifest(write_prepared, tmp_path, splits: dict[str, str]):
    """A prepared-style manifest (with summary.json) whose images are blob images."""
    src = tmp_path / "src"
    pixels = {rel: blob_image(10 + i, 160) for i, rel in enumerate(splits)}
    path = write_prepared(src, tmp_path / "data", [
        (rel, "malignant" if "/malignant/" in rel else "benign", split, pixels[rel], "")
        for rel, split in splits.items()])
    return read_manifest(path), src, pixels


def test_leakage_guard_finds_exact_and_near_copies(write_prepared, tmp_path):
    manifest, src, pixels = make_manifest(write_prepared, tmp_path, {
        "x/benign/t0.png": "train", "x/benign/t1.png": "train", "x/malignant/t2.png": "train",
        "x/benign/v0.png": "val", "x/malignant/s0.png": "test",
    })
    ext = tmp_path / "ext"
    (ext / "benign").mkdir(parents=True)
    (ext / "benign" / "exact.png").write_bytes((src / "x/benign/t0.png").read_bytes())
    save(pixels["x/malignant/t2.png"], ext / "malignant" / "near.jpg", quality=95)  # re-encoded copy
    save(pixels["x/benign/v0.png"], ext / "benign" / "in_val.jpg", quality=95)
    save(blob_image(99, 160), ext / "malignant" / "new.png")

    target, images = T.folder_target(ext)
    assert target.paths == ["benign/exact.png", "benign/in_val.jpg", "malignant/near.jpg", "malignant/new.png"]
    leaked, rows = T.find_seen(target, images, manifest, dedup.DEFAULT_MAX_DISTANCE)
    assert leaked.tolist() == [True, True, True, False]
    found = {(r["path"], r["ref_path"], r["ref_split"]) for r in rows}
    assert ("benign/exact.png", "x/benign/t0.png", "train") in found
    assert ("malignant/near.jpg", "x/malignant/t2.png", "train") in found
    assert ("benign/in_val.jpg", "x/benign/v0.png", "val") in found
    assert not any(r["ref_split"] == "test" for r in rows)
    s = T.leakage_summary(target, leaked, rows, max_distance=dedup.DEFAULT_MAX_DISTANCE)
    assert (s["n_in_train"], s["n_in_val"], s["n_exact"], s["n_near"], s["n_leaked"], s["n_leaked_malignant"]) == (
        2, 1, 1, 2, 3, 1,
    )


def test_split_target_and_hashes(write_prepared, tmp_path):
    manifest, src, _ = make_manifest(write_prepared, tmp_path, {
        "x/benign/t0.png": "train", "x/malignant/t1.png": "train", "x/benign/s0.png": "test",
        "x/malignant/s1.png": "test", "x/benign/s2.png": "test",
    })
    t = T.split_target(manifest, "test")
    assert t.paths == ["x/benign/s0.png", "x/malignant/s1.png", "x/benign/s2.png"] and t.labels.tolist() == [0, 1, 0]
    assert T.split_target(manifest, "test", limit=2).paths == [t.paths[i] for i in seeded_subset(len(t.labels), 2, 0)]
    images = T.split_hashes(manifest, t)  # no hashes.csv here: computed
    leaked, rows = T.find_seen(t, images, manifest, dedup.DEFAULT_MAX_DISTANCE)
    assert not leaked.any() and rows == []
    with pytest.raises(DataError, match="split is empty"):
        T.split_target(manifest, "val")
