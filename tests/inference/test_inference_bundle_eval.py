"""`melascan evaluate MODEL_DIR --csv ...`: what ships, scored with the card's thresholds, leakage-guarded."""

from __future__ import annotations

import json
import shutil

from melascan.cli import main
from melascan.data.manifest import read_manifest
from melascan.inference import card as model_card


def _csv(path, manifest, split):
    rows = [f"{manifest.source_root / r.path},{r.label}" for r in manifest.subset(split)]
    path.write_text("path,label\n" + "\n".join(rows) + "\n")
    return path


def test_exported_model_is_scored_with_its_own_thresholds_and_leakage_guard(exported, trained_run, tmp_path):
    card = model_card.load_card(exported)
    manifest = read_manifest(card["training"]["data_manifest"])
    out = tmp_path / "eval_test"
    args = ["evaluate", str(exported), "--bootstrap", "20", "--workers", "1"]
    assert main([*args, "--csv", str(_csv(tmp_path / "test.csv", manifest, "test")), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 8 and m["n_malignant"] == 4 and m["fused"] is False
    assert m["shipped"]["thresholds"]["balanced"]["threshold"] == card["calibration"]["thresholds"]["balanced"]
    assert m["leakage"]["n_leaked"] == 0 and "scope" in m and 0 <= m["scope"]["rejected_rate"] <= 1
    assert m["scope"]["familiar_below"] == card["scope"]["familiar_below"]
    # with the familiar cut below every score, each image the detector keeps is unfamiliar
    strict = tmp_path / "strict_model"
    shutil.copytree(exported, strict)
    model_card.write_card({**card, "scope": {**card["scope"], "familiar_below": 0.0}}, strict)
    assert main(["evaluate", str(strict), "--bootstrap", "20", "--workers", "1", "--csv", str(tmp_path / "test.csv"),
                 "--out", str(tmp_path / "strict")]) == 0
    scope = json.loads((tmp_path / "strict" / "metrics.json").read_text())["scope"]
    assert scope["unfamiliar"] == m["n_images"] - scope["rejected"] and scope["unfamiliar_rate"] > 0
    assert (out / "predictions.csv").read_text().count("\n") == 9
    assert m["site_thresholds"] == {"fitted": False, "reason": "needs at least 10 images of each class "
                                                              "({'malignant': 4, 'benign': 4})"}
    # training images are found by the guard and scored apart
    leaky = tmp_path / "leaky"
    assert main([*args, "--csv", str(_csv(tmp_path / "train.csv", manifest, "train")), "--out", str(leaky)]) == 0
    assert json.loads((leaky / "metrics.json").read_text())["leakage"]["n_leaked"] == len(manifest.subset("train"))
    # the manifest split named by the card works too, and run-only options are refused
    assert main([*args, "--split", "val", "--out", str(tmp_path / "val")]) == 0
    assert main([*args, "--tta", "--out", str(tmp_path / "x")]) == 2


def _site_csv(tmp_path, n_lesions_per_class=6):
    """A labelled CSV of synthetic pictures, two per lesion, melanomas darker: path,label,lesion_id."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(4 * n_lesions_per_class):
        label = "malignant" if i % 2 else "benign"
        rgb = np.clip(rng.normal(90 if label == "malignant" else 170, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / f"img_{i:02d}.jpg"
        Image.fromarray(rgb).save(path)
        rows.append(f"{path},{label},lesion_{i % (2 * n_lesions_per_class):02d}")
    csv_file = tmp_path / "site.csv"
    csv_file.write_text("path,label,lesion_id\n" + "\n".join(rows) + "\n")
    return csv_file


def test_a_set_large_enough_gets_its_own_thresholds_out_of_fold_grouped_by_lesion(exported, tmp_path, capsys):
    from melascan.evaluation.targets import csv_target

    csv_file = _site_csv(tmp_path)
    target, _ = csv_target(csv_file)
    assert target.groups[:2] == ["lesion_00", "lesion_01"]
    assert main(["evaluate", str(exported), "--bootstrap", "0", "--workers", "1", "--csv", str(csv_file),
                 "--out", str(tmp_path / "site")]) == 0
    site = json.loads((tmp_path / "site" / "metrics.json").read_text())["site_thresholds"]
    assert site["fitted"] and site["n"] == 24 and site["n_malignant"] == 12
    for op in ("balanced", "screening"):
        assert 0 <= site[op]["site"]["specificity"]["mean"] <= 1 and site[op]["model"]["sensitivity"] is not None
    assert "this set's own balanced threshold" in capsys.readouterr().out


def test_calibrate_writes_a_copy_with_the_sites_thresholds_and_out_of_fold_rates(exported, tmp_path, capsys):
    from melascan.evaluation.bundle import read_predictions
    from melascan.evaluation.calibration import balanced_threshold, screening_threshold
    from melascan.inference import Classifier
    from melascan.web.risk import operating_points

    csv_file = _site_csv(tmp_path, n_lesions_per_class=8)
    out = tmp_path / "clinic_model"
    assert main(["calibrate", str(exported), "--csv", str(csv_file), "--name", "clinic", "--out", str(out),
                 "--min-per-class", "10"]) == 0
    printed = capsys.readouterr().out
    assert "serve it with: melascan serve --model" in printed and "out of scope (the app asks" in printed
    original, card = model_card.load_card(exported), Classifier(out).card
    pred = read_predictions(out / "site_evaluation" / "predictions.csv")
    assert card["calibration"]["thresholds"] == {"balanced": balanced_threshold(pred["label"], pred["probability"]),
                                                 "screening": screening_threshold(pred["label"], pred["probability"])}
    assert card["calibration"]["temperature"] == original["calibration"]["temperature"]  # the probability shown
    assert card["calibration"]["replaced"]["thresholds"] == original["calibration"]["thresholds"]
    assert card["calibration"]["fitted_on"]["n"] == 32 and card["files"] == original["files"]
    assert "external_validation" not in card and "refitted on clinic" in card["warnings"][-1]
    site = json.loads((out / "site_evaluation" / "metrics.json").read_text())["site_thresholds"]
    points = {p["name"]: p for p in operating_points(card)}  # what the app shows beside each result
    assert points["balanced"]["set"] == "clinic" and "out of fold" in card["metrics"]["clinic"]["thresholds"]
    assert points["balanced"]["sensitivity"] == site["balanced"]["site"]["sensitivity"]["mean"]
    assert points["screening"]["threshold"] == card["calibration"]["thresholds"]["screening"]
    assert "| clinic |" in (out / "model_card.md").read_text()


def test_calibrate_refuses_too_few_images_and_keeps_the_original(exported, tmp_path, capsys):
    csv_file = _site_csv(tmp_path)
    args = ["calibrate", str(exported), "--csv", str(csv_file), "--name", "clinic"]
    assert main([*args, "--out", str(tmp_path / "few")]) == 2
    assert "12 malignant and 12 benign" in capsys.readouterr().err and not (tmp_path / "few").exists()
    assert main([*args, "--out", str(exported), "--min-per-class", "10"]) == 2
    assert "must be a new folder" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    assert main([*args, "--out", str(tmp_path / "taken"), "--min-per-class", "10"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "taken" / "x"), "--min-per-class", "10"]) == 2  # a file
    assert "not empty" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "low"), "--min-per-class", "5"]) == 2
    assert "must be at least 10" in capsys.readouterr().err
    # the model's own training images would make its out-of-fold rates a lie
    manifest = read_manifest(model_card.load_card(exported)["training"]["data_manifest"])
    train_csv = _csv(tmp_path / "train.csv", manifest, "train")
    assert main(["calibrate", str(exported), "--csv", str(train_csv), "--name", "clinic", "--out",
                 str(tmp_path / "leaky"), "--min-per-class", "10"]) == 2
    assert "also in the model's training or validation data" in capsys.readouterr().err
    assert not (tmp_path / "leaky").exists()
