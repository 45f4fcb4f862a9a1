"""`melascan study`: the seed's grids, scored on the test split, written as CSV + Markdown, resumable."""

import csv
import dataclasses
import json
import logging
import re

import numpy as np
import pytest
from sklearn import metrics as skm

from melascan.cli import main
from melascan.errors import DataError
from melascan.training.config import RunConfig
from melascan.training.study import STUDY_GRIDS, score_logits, study_configs
from melascan.training.study_tables import RESULT_COLUMNS

FOUR_DECIMALS = re.compile(r"^\d\.\d{4}$")
METRIC_COLUMNS = [f"{s}_{m}" for s in ("test", "val") for m in ("accuracy", "recall", "precision", "f1", "roc_auc")]


@pytest.fixture
def cfg_file(tiny_config, tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in dataclasses.asdict(tiny_config).items()))
    return path


def study(grid, cfg_file, out, *only, extra=()):
    return main(["study", grid, "--config", str(cfg_file), "--epochs", "1", "--image-size", "32",
                 "--out", str(out), *extra, "--only", *only])


def read_rows(out):
    with open(out / "results.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == RESULT_COLUMNS
        return list(reader)


def check_table(out, rows, n_test=8):
    for row in rows:
        assert int(row["test_n"]) == n_test and int(row["val_n"]) == 12  # the tiny manifest's splits
        for col in METRIC_COLUMNS + ["test_specificity", "val_loss"]:
            assert FOUR_DECIMALS.match(row[col]), (col, row[col])
        assert row["stopped_epoch"] == "1" and row["early_stopped"] == "no"
    md = (out / "results.md").read_text()
    assert "test acc | test recall | test precision | test F1 | test AUC" in md
    assert "Measured on: CPU" in md and "Reproduce: `melascan study" in md and "P(melanoma) >= 0.5" in md
    for row in rows:
        assert f"| {row['test_accuracy']} | {row['test_recall']} | {row['test_precision']} | " \
               f"{row['test_f1']} | {row['test_roc_auc']} |" in md
    return md


def test_grids_are_the_seeds():
    assert len(STUDY_GRIDS["augment"]) == 28
    assert list(STUDY_GRIDS["augment"])[:3] == ["baseline", "F1", "F2"] and "C8_ws" in STUDY_GRIDS["augment"]
    models = study_configs(RunConfig(), "models")
    assert list(models) == ["resnet50", "efficientnet_b0", "densenet121", "convnext_tiny", "vgg16_bn",
                            "inception_v3", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert models["resnet50"].pretrained == "none"
    assert all(models[f"efficientnet_lite{n}"].pretrained == "offline" for n in (0, 1, 2))
    strategies = study_configs(RunConfig(), "strategies")
    assert strategies["baseline"].drop_rate == 0.3 and strategies["no_dropout"].drop_rate == 0.0
    assert [strategies[f"focal_a{a}"].focal_alpha for a in ("0.25", "0.5", "1", "2")] == [0.25, 0.5, 1.0, 2.0]
    assert (strategies["focal_a0.35_g2.5"].focal_alpha, strategies["focal_a0.35_g2.5"].focal_gamma) == (0.35, 2.5)
    assert [strategies[f"warmup_{n}"].warmup_epochs for n in (5, 10, 20)] == [5, 10, 20]
    assert strategies["tta"].tta and STUDY_GRIDS["strategies"]["tta"].run_of == "baseline"
    with pytest.raises(DataError, match="inception_v3 needs image_size >= 75"):
        study_configs(RunConfig(image_size=64), "models")
    assert list(study_configs(RunConfig(image_size=64), "models", only=["resnet50"])) == ["resnet50"]


def test_score_logits_uses_softmax_at_one_half():
    y = np.array([0, 0, 1, 1, 1])
    logits = np.array([[2.0, 0.0], [0.0, 0.5], [0.0, 1.0], [1.0, 0.9], [0.0, 0.0]])  # last: P = 0.5 -> malignant
    s = score_logits(y, logits)
    pred = np.array([0, 1, 1, 0, 1])
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred))
    p = np.exp(logits[:, 1]) / np.exp(logits).sum(1)
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))


def test_augment_study_writes_tables_and_resumes(cfg_file, tmp_path, caplog):
    out = tmp_path / "augment"
    assert study("augment", cfg_file, out, "C4", "C4_ws") == 0
    rows = read_rows(out)
    assert [(r["variant"], r["recipe"], r["weighted_sampling"]) for r in rows] == [("C4", "C4", "no"),
                                                                                   ("C4_ws", "C4", "yes")]
    md = check_table(out, rows)
    assert "## Without class-weighted sampling" in md and "## With class-weighted sampling (WS)" in md
    assert "--set epochs=1 image_size=32" in md and "--only C4 C4_ws" in md
    cached = out / "C4" / "study_metrics.json"
    assert json.loads(cached.read_text())["test"]["n"] == 8
    stamps = {p: p.stat().st_mtime_ns for p in (cached, out / "C4" / "checkpoints" / "best.pt")}

    caplog.set_level(logging.INFO, logger="melascan.training")
    assert study("augment", cfg_file, out, "C4") == 0  # skipped, scores reused, the table keeps C4_ws
    assert "C4: already finished, skipped" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert [r["variant"] for r in read_rows(out)] == ["C4", "C4_ws"]
    assert "--out " + str(out) + " --only C4 C4_ws`" in (out / "results.md").read_text()
    assert study("augment", cfg_file, out, "C4", extra=["--set", "lr=0.01"]) == 2  # other settings: refused
    assert main(["study", "augment", "--config", str(cfg_file), "--only", "nope"]) == 2


def test_models_study_records_the_weights(cfg_file, tmp_path):
    out = tmp_path / "models"
    assert study("models", cfg_file, out, "efficientnet_b0", "efficientnet_lite0") == 0
    rows = read_rows(out)
    assert [(r["model"], r["pretrained"]) for r in rows] == [("efficientnet_b0", "none (from scratch)"),
                                                             ("efficientnet_lite0", "ImageNet (offline)")]
    assert float(rows[0]["params_m"]) > 1
    md = check_table(out, rows)
    assert "| efficientnet_lite0 | ImageNet (offline) |" in md


def test_strategies_study_scores_tta_on_the_baseline_run(cfg_file, tmp_path):
    out = tmp_path / "strategies"
    assert study("strategies", cfg_file, out, "baseline", "tta", "focal_a0.25") == 0
    rows = read_rows(out)
    assert [r["variant"] for r in rows] == ["baseline", "tta", "focal_a0.25"]
    by = {r["variant"]: r for r in rows}
    assert by["tta"]["run_dir"] == by["baseline"]["run_dir"] and by["tta"]["tta"] == "yes"
    assert by["tta"]["best_epoch"] == by["baseline"]["best_epoch"]
    assert not (out / "tta").exists() and (out / "baseline" / "study_metrics_tta.json").is_file()
    assert by["focal_a0.25"]["loss"] == "focal" and "focal_alpha: 0.25" in (out / "focal_a0.25" / "config.yaml").read_text()
    check_table(out, rows)


def test_study_scores_out_of_source_sets_with_confidence_intervals(cfg_file, tiny_manifest, tmp_path):
    from melascan.data.manifest import read_manifest

    manifest = read_manifest(tiny_manifest)
    external = tmp_path / "other_source.csv"
    external.write_text("path,label\n" + "".join(f"{manifest.source_root / r.path},{r.label}\n"
                                                  for r in manifest.subset("test")))
    out = tmp_path / "study"
    assert study("augment", cfg_file, out, "baseline", "F1", extra=("--external", f"other={external}")) == 0
    with open(out / "results.csv", newline="") as fh:
        row, other = list(csv.DictReader(fh))
    # every variant is compared with the reference row on the same images
    assert row["test_roc_auc_vs_ref_p"] == row["test_mcnemar_vs_ref_p"] == ""
    for col in ("test_roc_auc_vs_ref_p", "test_mcnemar_vs_ref_p", "ext_other_roc_auc_vs_ref_p"):
        assert 0 <= float(other[col]) <= 1
    assert FOUR_DECIMALS.match(row["ext_other_roc_auc"]) and FOUR_DECIMALS.match(row["ext_other_benign_fp"])
    assert float(row["test_roc_auc_ci_low"]) <= float(row["test_roc_auc"]) <= float(row["test_roc_auc_ci_high"])
    md = (out / "results.md").read_text()
    assert "other AUC [95% CI]" in md and "--external other=" in md and "test AUC [95% CI]" in md
    assert "AUC vs ref. p (DeLong)" in md and "reference row `baseline`" in md
    assert (out / "results.png").stat().st_size > 0
    assert study("augment", cfg_file, out, "baseline", extra=("--external", "bad name=x.csv")) == 2


def test_seed_spread_reports_mean_sd_and_range_of_repeated_variants():
    from melascan.training.study_tables import seed_spread, spread_markdown

    rows = {42: [{"variant": "baseline", "test_f1": "0.80", "test_roc_auc": "0.95", "ext_ph2_roc_auc": "0.8"},
                 {"variant": "F1", "test_f1": "0.70", "test_roc_auc": "0.90"}],
            43: [{"variant": "baseline", "test_f1": "0.84", "test_roc_auc": "0.97", "ext_ph2_roc_auc": "0.9"}]}
    (entry,) = seed_spread(rows)  # F1 has one seed only
    assert entry["variant"] == "baseline" and entry["seeds"] == [42, 43]
    assert entry["test_f1"]["mean"] == pytest.approx(0.82) and entry["test_f1"]["sd"] == pytest.approx(0.0282843, rel=1e-5)
    assert (entry["ext_ph2_roc_auc"]["min"], entry["ext_ph2_roc_auc"]["max"]) == (0.8, 0.9)
    assert "| baseline | 42, 43 | test_roc_auc | 0.9600 | 0.0141 | 0.9500-0.9700 |" in spread_markdown([entry])
