"""ONNX export, model card and run-folder reading (needs torch)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from melascan.errors import ModelError
from melascan.inference import card as model_card
from melascan.export import runinfo


def test_export_writes_one_onnx_file_head_and_card(exported, trained_run):
    card = model_card.load_card(exported)
    model_card.verify_files(card, exported)
    names = sorted(p.name for p in exported.iterdir())
    named = [card["files"][k]["name"] for k in ("onnx", "head", "scope")]  # scope: the out-of-scope detector
    assert names == sorted(named + ["model_card.json", "model_card.md"])
    assert card["status"] == "trained"
    assert card["architecture"] == "resnet10t"
    assert card["input"]["image_size"] == 64
    assert card["input"]["color_constancy"] == "shades_of_gray"
    assert card["export"]["max_abs_diff_logits"] < 1e-4
    assert card["export"]["pipeline_max_abs_diff_logits"] < 1e-4
    assert card["cam"]["exact"] is True
    assert card["files"]["onnx"]["bytes"] < 25e6


def test_card_copies_calibration_training_and_metrics(exported, trained_run):
    card = model_card.load_card(exported)
    cal = json.loads((trained_run / "calibration.json").read_text())
    assert card["calibration"]["temperature"] == pytest.approx(cal["temperature"])
    assert card["calibration"]["thresholds"] == pytest.approx(cal["thresholds"])
    assert card["calibration"]["fitted_on"] == cal["fitted_on"] and card["calibration"]["command"] == cal["command"]
    data = json.loads((trained_run / "data.json").read_text())
    assert card["training"]["data_manifest_sha256"] == data["manifest_sha256"]
    assert card["training"]["command"].startswith("melascan train --config ")
    assert card["training"]["config"]["model"] == "resnet10t"
    test = json.loads((trained_run / "eval" / "test" / "metrics.json").read_text())
    assert list(card["metrics"]) == ["test"]
    assert card["metrics"]["test"]["roc_auc"] == pytest.approx(test["plain"]["ranking"]["roc_auc"])
    assert card["metrics"]["test"]["n_images"] == test["n_images"]
    assert not any("calibration.json" in w for w in card["warnings"])
    md = (exported / "model_card.md").read_text()
    assert "resnet10t" in md and card["files"]["onnx"]["sha256"] in md


def test_onnx_logits_match_pytorch_through_the_whole_pipeline(clf, torch_run, rng):
    from melascan.training.runs import predict_logits

    model, cfg = torch_run
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((64, 64), (90, 120), (200, 150), (33, 47))]
    ref = predict_logits(model, cfg, images)
    got, _ = clf.predict_arrays(images)
    assert np.abs(ref - got).max() < 1e-4


def test_head_weights_reproduce_logits_from_pooled_features(clf, rng):
    rgbs = [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(3)]
    logits, features = clf.predict_arrays(rgbs, with_features=True)
    pooled = features.mean(axis=(2, 3))
    np.testing.assert_allclose(pooled @ clf.weight.T + clf.bias, logits, atol=1e-4)


def test_int8_export_without_calibration_warns_in_card(trained_run, tmp_path, clf):
    from melascan.cli import main
    from melascan.inference import Classifier

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "calibration.json").unlink()
    shutil.rmtree(run / "eval")
    out = tmp_path / "model"
    assert main(["export", str(run), "--out", str(out), "--int8", "--int8-images", "8"]) == 0
    card = model_card.load_card(out)
    assert card["calibration"] == {"temperature": 1.0, "thresholds": {"balanced": 0.5, "screening": 0.5}, "source": None}
    assert any("No calibration.json" in w for w in card["warnings"])
    assert card["metrics"] == {}
    assert "No evaluation outputs" in (out / "model_card.md").read_text()

    assert card["precision"] == "int8" and any("int8" in w for w in card["warnings"])
    comparison = card["export"]["int8"]["comparison"]
    assert comparison["n_images"] == 12 and 0 <= comparison["max_abs_diff_probability"] <= 1
    assert {"roc_auc_fp32", "roc_auc_int8", "label_agreement_balanced"} <= set(comparison)
    assert card["export"]["int8"]["calibration_images"] == 8
    int8 = Classifier(out)
    rgb = np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    p = int8.predict(rgb, with_cam=True)
    assert 0 <= p.probability <= 1 and p.cam.shape == (80, 80)


def test_export_refuses_oversized_and_non_binary_models(tmp_path):
    import timm

    from melascan.export.bundle import export_onnx, head_weights

    model = timm.create_model("resnet10t", num_classes=3)
    with pytest.raises(ModelError, match="2-class"):
        head_weights(model)
    model = timm.create_model("resnet10t", num_classes=2)
    with pytest.raises(ModelError, match="exceeds"):
        export_onnx(model, tmp_path / "m.onnx", 32, max_size_mb=0.01)


def test_runinfo_reads_nothing_that_is_not_there(tmp_path):
    assert runinfo.read_calibration(tmp_path) is None
    assert runinfo.read_metrics(tmp_path) == {}
    assert runinfo.read_training(tmp_path) == {"run": str(tmp_path), "checkpoint": "best"}


def test_summarize_metrics_keeps_overlap_free_numbers():
    metrics = {
        "n_images": 10,
        "plain": {"ranking": {"roc_auc": 0.8}, "thresholds": {"balanced": {"sensitivity": 0.7, "specificity": 0.6}}},
        "without_leaked": {"n_images": 8, "plain": {"ranking": {"roc_auc": 0.75}}},
    }
    s = runinfo.summarize_metrics(metrics, "x/metrics.json")
    assert s == {
        "n_images": 10, "roc_auc": 0.8, "sensitivity_balanced": 0.7, "specificity_balanced": 0.6,
        "n_images_without_leaked": 8, "roc_auc_without_leaked": 0.75, "source": "x/metrics.json",
    }  # fmt: skip
    table = "\n".join(model_card._metrics_table({"official": s}))
    assert "official without images also in training" in table and "0.75" in table


def test_export_notes_go_into_the_card_and_a_missing_file_is_a_clear_error(trained_run, tmp_path, capsys):
    from melascan.cli import main

    notes = tmp_path / "notes.md"
    notes.write_text("**Held-back slice.** ROC-AUC 0.9 on images that look different.\n")
    out = tmp_path / "model"
    assert main(["export", str(trained_run), "--out", str(out), "--notes", str(notes)]) == 0
    assert model_card.load_card(out)["notes"].startswith("**Held-back slice.**")
    assert "## Notes" in (out / "model_card.md").read_text()

    assert main(["export", str(trained_run), "--out", str(tmp_path / "m2"), "--notes", str(tmp_path / "nope.md")]) == 2
    assert "notes file not found" in capsys.readouterr().err


def test_export_with_tta_ships_the_views_and_their_calibration(trained_run, tmp_path, clf, capsys):
    from melascan.cli import main
    from melascan.inference import Classifier
    from melascan.preprocess import tta_views

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    out = tmp_path / "model"
    assert main(["export", str(run), "--out", str(out), "--tta", "--no-scope"]) == 2
    assert "melascan evaluate" in capsys.readouterr().err and not out.exists()  # no TTA calibration yet

    assert main(["evaluate", str(run), "--split", "test", "--tta", "2", "--bootstrap", "0"]) == 0
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["tta"]["views"] == 2 and "--tta 2" in cal["command"]
    assert main(["export", str(run), "--out", str(out), "--tta", "--no-scope"]) == 0
    card = model_card.load_card(out)
    assert card["input"]["test_time_views"] == 2 and model_card.test_time_views(card) == 2
    assert card["calibration"]["temperature"] == pytest.approx(cal["tta"]["temperature"])
    assert card["calibration"]["thresholds"] == pytest.approx(cal["tta"]["thresholds"])
    assert card["export"]["pipeline_max_abs_diff_logits"] < 1e-4  # training's predict_logits(tta=2) vs runtime
    test = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert test["tta_views"] == 2  # the card's numbers are the two-view ones
    assert card["metrics"]["test"]["roc_auc"] == pytest.approx(test["tta"]["ranking"]["roc_auc"])
    assert "averaged over 2 symmetries" in (out / "model_card.md").read_text()

    tta_clf = Classifier(out)
    rgbs = [np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8) for _ in range(2)]
    x = np.stack([clf.prepare(r) for r in rgbs])
    logits, features = tta_clf.run(x)
    plain = [clf.run(v)[0] for v in tta_views(x, 2)]
    np.testing.assert_allclose(logits, np.mean(plain, axis=0), atol=1e-5)
    np.testing.assert_allclose(features, clf.run(x)[1], atol=1e-5)  # CAM features: the image as it is
    p = tta_clf.predict_rgbs(rgbs, with_cam=True)[0]
    assert p.logits == pytest.approx(tuple(logits[0]), abs=1e-5) and p.cam.shape == (70, 90)
