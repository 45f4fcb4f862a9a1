"""Mean-logit ensembles: ``melascan ensemble``, then evaluate and export like one run (needs torch).

Two real tiny runs (seeds 0 and 1 of tests/conftest.py's ``train_tiny_run``) are the members."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from melascan.errors import DataError, ModelError


@pytest.fixture(scope="module")
def ensemble_run(trained_run, second_trained_run, tmp_path_factory):
    from melascan.cli import main

    out = tmp_path_factory.mktemp("ensemble") / "ens"
    assert main(["ensemble", str(trained_run), str(second_trained_run), "--out", str(out)]) == 0
    assert main(["evaluate", str(out), "--split", "test", "--bootstrap", "20"]) == 0
    return out


@pytest.fixture(scope="module")
def ensemble_model(ensemble_run, tmp_path_factory):
    from melascan.cli import main

    out = tmp_path_factory.mktemp("ensemble_model")
    assert main(["export", str(ensemble_run), "--out", str(out), "--fp16-weights"]) == 0
    return out


def _images(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (64 + 7 * i, 80, 3), dtype=np.uint8) for i in range(n)]


def test_an_ensemble_folder_loads_as_the_mean_of_its_members_logits(ensemble_run, trained_run, second_trained_run):
    from melascan.training.runs import load_run, predict_logits

    model, cfg = load_run(ensemble_run)
    assert cfg.members == [str(trained_run), str(second_trained_run)]
    members = [predict_logits(*load_run(run), _images()) for run in (trained_run, second_trained_run)]
    np.testing.assert_allclose(predict_logits(model, cfg, _images()), np.mean(members, axis=0), atol=1e-5)
    # the timm-style methods export uses give the same logits, and the folded head equals them on pooled features
    import torch

    x = torch.randn(2, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features, stages = model.forward_intermediates(x)
        head = model.get_classifier()
        np.testing.assert_allclose(model.forward_head(features).numpy(), model(x).numpy(), atol=1e-5)
        np.testing.assert_allclose(head(features.mean(dim=(2, 3))).numpy(), model(x).numpy(), atol=1e-5)
    assert features.shape[1] == model.num_features == sum(model.widths) and len(stages) > 1


def test_evaluating_an_ensemble_calibrates_it_on_its_own_validation_logits(ensemble_run, trained_run):
    from melascan.runfolder import RunFolder

    run = RunFolder(ensemble_run)
    cal = run.read_calibration("best")
    assert cal is not None and cal["temperature"] > 0
    assert cal != RunFolder(trained_run).read_calibration("best")
    assert (ensemble_run / "eval" / "test" / "metrics.json").is_file() and (ensemble_run / "report.md").is_file()
    assert run.command().startswith("melascan ensemble ") and str(trained_run) in run.command()


def test_export_of_an_ensemble_is_one_onnx_file_with_fp16_weights(ensemble_model, ensemble_run, trained_run, exported):
    from melascan.inference import Classifier
    from melascan.inference import card as model_card
    from melascan.training.runs import load_run, predict_logits

    card = model_card.load_card(ensemble_model)
    model_card.verify_files(card, ensemble_model)
    assert card["architecture"] == "mean-logit ensemble of 2 x resnet10t"
    assert card["precision"] == "fp32 (weights stored as fp16)"
    assert card["export"]["weights"].startswith("float16")
    assert card["training"]["command"].startswith("melascan ensemble ")
    assert card["training"]["config"]["members"][0] == str(trained_run)
    assert card["cam"]["exact"] is True and "scope" in card["files"]
    # two members in half precision: about the size of one member in full precision
    single = model_card.load_card(exported)["files"]["onnx"]["bytes"]
    assert card["files"]["onnx"]["bytes"] < 1.2 * single
    clf = Classifier(ensemble_model)
    ref = predict_logits(*load_run(ensemble_run), _images())
    got, features = clf.predict_arrays(_images(), with_features=True)
    assert np.abs(ref - got).max() < 1e-2 * max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(features.mean(axis=(2, 3)) @ clf.weight.T + clf.bias, got, atol=1e-4)
    assert all(p.in_scope is not None for p in clf.predict_rgbs(_images(2)))


def test_fp16_weights_halve_a_single_model_file_and_keep_its_logits(exported, tmp_path):
    import onnxruntime as ort

    from melascan.export.bundle import store_weights_fp16
    from melascan.inference import card as model_card

    source = exported / model_card.load_card(exported)["files"]["onnx"]["name"]
    half = tmp_path / "half.onnx"
    shutil.copyfile(source, half)
    assert store_weights_fp16(half) > 0
    assert half.stat().st_size < 0.6 * source.stat().st_size
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})[0]
            for p in (source, half))
    assert np.abs(a - b).max() < 1e-2 * max(1.0, np.abs(a).max())


def test_ensembles_that_cannot_be_built_are_clear_errors(trained_run, second_trained_run, tmp_path):
    from melascan.training.config import RunConfig
    from melascan.training.engine import train
    from melascan.training.ensemble import make_ensemble
    from melascan.training.runs import load_run

    with pytest.raises(DataError, match="at least two different"):
        make_ensemble([trained_run], tmp_path / "one")
    with pytest.raises(DataError, match="at least two different"):
        make_ensemble([trained_run, trained_run], tmp_path / "same")
    other = tmp_path / "other_size"
    shutil.copytree(trained_run, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    (other / "config.yaml").write_text(yaml.safe_dump({**config, "image_size": 96}))
    with pytest.raises(DataError, match="image_size"):
        make_ensemble([trained_run, other], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()  # nothing half-written
    with pytest.raises(ModelError, match="checkpoint not found"):
        make_ensemble([trained_run, tmp_path / "missing"], tmp_path / "gone")
    good = make_ensemble([trained_run, second_trained_run], tmp_path / "ens")
    with pytest.raises(DataError, match="already holds a run"):
        make_ensemble([trained_run, second_trained_run], good)
    with pytest.raises(DataError, match="no 'last'"):
        load_run(good, checkpoint="last")
    with pytest.raises(DataError, match="not trained"):
        train(RunConfig(members=[str(trained_run), str(second_trained_run)]), tmp_path / "t")
    with pytest.raises(DataError, match="members must list at least two"):
        RunConfig(members=[str(trained_run)]).validate()
    assert json.loads((good / "data.json").read_text()) == json.loads((trained_run / "data.json").read_text())
    from melascan.export.run import ExportOptions, export_run

    with pytest.raises(DataError, match="choose one"):
        export_run(good, tmp_path / "model", ExportOptions(int8=True, fp16_weights=True))
