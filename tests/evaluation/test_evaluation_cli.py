"""End to end: `melascan train` a tiny model for 1 epoch, then `melascan evaluate` it
on its test split (with TTA) and on an external labelled folder (leakage guard)."""

import csv
import json
import shutil

import pytest

from melascan.cli import main

pytest.importorskip("torch")
pytest.importorskip("timm")


@pytest.fixture(scope="module")
def dataset(make_dataset, tmp_path_factory):
    """``images/<split>/<label>/*.jpg`` + ``split/manifest.csv`` (train 8/8, val 6/6, test 5/5)."""
    root = tmp_path_factory.mktemp("e2e")
    make_dataset(root, {"train": (8, 8), "val": (6, 6), "test": (5, 5)})
    return root


def test_train_then_evaluate(dataset, make_dataset, capsys):
    run = dataset / "runs" / "tiny"
    rc = main([
        "train", "--out", str(run), "--set", f"manifest={dataset / 'split' / 'manifest.csv'}", "eda_json=none",
        "model=resnet10t", "pretrained=none", "image_size=32", "epochs=1", "batch_size=8", "warmup_epochs=0",
        "recipe=C4", "checkpoint_every=0", "device=cpu", f"cache_dir={dataset / 'cache'}",
    ])
    assert rc == 0 and (run / "checkpoints" / "best.pt").is_file()

    assert main(["evaluate", str(run), "--split", "test", "--tta", "--bootstrap", "50", "--device", "cpu"]) == 0
    out = run / "eval" / "test"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 10 and metrics["with_tta"] is True
    assert set(metrics["plain"]["thresholds"]) == {"0.5", "balanced", "screening"} and "tta" in metrics
    assert metrics["leakage"]["n_leaked"] == 0
    with open(out / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 and 0 <= float(rows[0]["probability"]) <= 1
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["temperature"] > 0 and set(cal["thresholds"]) == {"balanced", "screening"} and "tta" in cal
    assert cal["validation"]["at_threshold"]["screening"]["sensitivity"] >= 0.95

    # an external folder holding two training images and three new ones
    ext = dataset / "external"
    for i in (0, 1):
        (ext / "site" / "benign").mkdir(parents=True, exist_ok=True)
        shutil.copy(dataset / "images" / "train" / "benign" / f"{i:03d}.jpg", ext / "site" / "benign" / f"copy{i}.jpg")
    make_dataset(ext, {"new": (1, 2)}, seed=5)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--folder", str(ext), "--bootstrap", "50", "--device", "cpu"]) == 0
    assert "leakage: 2 of 5 images" in capsys.readouterr().out
    metrics = json.loads((run / "eval" / "external" / "metrics.json").read_text())
    assert metrics["leakage"]["n_in_train"] == 2 and metrics["without_leaked"]["n_images"] == 3

    report = (run / "report.md").read_text()
    assert "Evaluation: test" in report and "Evaluation: external" in report
    assert f"melascan evaluate {run} --folder {ext}" in report
    assert (run / "report.html").stat().st_size > 0 and (run / "figures" / "training_curves.png").is_file()


def test_evaluate_errors_are_clean(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope"), "--tta", "3"]) == 2
    assert "--tta: test-time views must be one of (1, 2, 4, 8)" in capsys.readouterr().err


def test_leakage_guard_counts_only_images_a_limited_run_used(dataset):
    from melascan.data.manifest import read_manifest
    from melascan.evaluation.targets import used_paths
    from melascan.training.config import RunConfig

    manifest = read_manifest(dataset / "split" / "manifest.csv")
    assert used_paths(manifest, RunConfig(limit=None)) is None
    used = used_paths(manifest, RunConfig(limit=3, seed=1))
    assert len(used) == 6 and {p.split("/")[1] for p in used} == {"train", "val"}
