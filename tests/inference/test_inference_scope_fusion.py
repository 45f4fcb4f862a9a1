"""Out-of-scope detector and network + lesion fusion: pure functions and the exported bundle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from melascan.errors import ModelError
from melascan.inference import fusion as F
from melascan.inference.scope import ScopeModel, fit_scope


def test_scope_threshold_passes_the_validation_share_and_rejects_far_points(tmp_path):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, 40))

    def sample(n):
        return rng.normal(size=(n, 8)) @ basis + 0.05 * rng.normal(size=(n, 40))

    colour = lambda n: rng.normal(size=(n, 5))  # noqa: E731
    train, val = sample(2000), sample(1000)
    model = fit_scope(train, val, colour(2000), colour(1000), pass_rate=0.99)
    assert 0.97 <= model.in_scope(val, colour(1000)).mean() <= 0.995
    assert np.median(model.scores(sample(200), colour(200))) < 1
    off_manifold = rng.normal(size=(50, 40))  # directions the training images never use
    assert not model.in_scope(off_manifold, colour(50)).any()
    assert not model.in_scope(val[:50] + 20 * basis[0], colour(50)).any()
    assert not model.in_scope(val[:50], colour(50) + 10).any()  # colours unlike any training image
    # 4-D feature maps are pooled; save/load keeps the decisions
    maps = np.repeat(val[:10, :, None, None], 3, axis=2).repeat(2, axis=3)
    c10 = colour(10)
    np.testing.assert_allclose(model.scores(maps, c10), model.scores(val[:10], c10))
    model.save(tmp_path / "scope.npz")
    again = ScopeModel.load(tmp_path / "scope.npz")
    np.testing.assert_allclose(again.scores(val, c10.repeat(100, axis=0)), model.scores(val, c10.repeat(100, axis=0)))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError):
        ScopeModel.load(tmp_path / "bad.npz")


def test_left_out_source_rates_measure_a_source_the_detector_never_saw():
    from melascan.inference.scope import left_out_source_rates

    rng = np.random.default_rng(2)
    basis = rng.normal(size=(6, 30))
    near = lambda n, shift: rng.normal(size=(n, 6)) @ basis + shift + 0.05 * rng.normal(size=(n, 30))  # noqa: E731
    colour = lambda n: rng.normal(size=(n, 4))  # noqa: E731
    train = np.concatenate([near(600, 0), near(600, 0), near(600, 5)])
    val = np.concatenate([near(300, 0), near(300, 0), near(300, 5)])
    t_src, v_src = np.repeat(["a", "b", "far"], 600), np.repeat(["a", "b", "far"], 300)
    rates = left_out_source_rates(train, colour(1800), t_src, val, colour(900), v_src)
    assert set(rates) == {"a", "b", "far"}
    assert rates["a"]["rejected"] < 0.1 and rates["b"]["rejected"] < 0.1  # like the sources it was fitted on
    assert 0.0 < rates["a"]["unfamiliar"] < 0.15  # about the 5 % the familiar cut leaves out, plus the rejected
    assert rates["far"]["rejected"] > 0.9  # a shifted source is lost
    assert rates["far"]["unfamiliar"] >= rates["far"]["rejected"]  # rejected pictures are unfamiliar too
    assert left_out_source_rates(train, colour(1800), t_src, val, colour(900), np.repeat("a", 900)) == {}


def test_familiar_cut_is_the_validation_quantile():
    from melascan.inference.scope import FAMILIAR_RATE, familiar_cut

    scores = np.linspace(0.0, 1.0, 101)
    assert familiar_cut(scores) == pytest.approx(FAMILIAR_RATE)
    assert familiar_cut(scores, 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no validation scores"):
        familiar_cut(np.array([]))


def test_colour_statistics_tell_gray_text_from_skin():
    from melascan.evaluation.nonskin import printed_text
    from melascan.inference.scope import colour_statistics

    skin = np.full((120, 120, 3), (205, 150, 130), np.uint8)
    skin[40:80, 40:80] = (90, 55, 40)
    a, b = colour_statistics(skin), colour_statistics(printed_text())
    assert a.shape == b.shape == (26,) and np.isfinite(a).all()
    assert a[18] > 10 > b[18]  # mean chroma: skin and pigment are coloured, a printed page is not


def test_fusion_learns_from_logit_and_lesion_and_handles_missing_lesions():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    lesion = lambda a, colors: {"lesion_found": True, "asymmetry": a, "border": 3, "colors": ["black"] * colors,  # noqa: E731
                                "compactness": 1.2, "fractal_dimension": 1.1, "area_px": 500,
                                "image_size": {"height": 50, "width": 50}, "color_fractions": {"black": 0.1}}
    rows = [F.lesion_inputs(rng.normal(1.5 * yi - 0.75), lesion(int(2 * yi * rng.random() > 0.5), 1 + 2 * yi))
            for yi in y]
    block = F.fit_fusion(np.array(rows), y)
    block["thresholds"] = {"balanced": 0.5, "screening": 0.3}
    assert F.check_fusion(block) is block
    p = F.fused_probability(block, np.array(rows))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > roc_auc_score(y, np.array(rows)[:, 0])  # colours add information
    no_lesion = F.lesion_inputs(0.3, None)
    assert no_lesion[:2] == [0.3, 0.0] and all(math.isnan(v) for v in no_lesion[2:])
    assert 0 < F.fused_probability(block, no_lesion)[0] < 1
    higher = F.fused_probability(block, [F.lesion_inputs(z, lesion(1, 2)) for z in (-2.0, 0.0, 2.0)])
    assert np.all(np.diff(higher) > 0)
    for broken in ({}, {**block, "features": ["x"]}, {**block, "thresholds": {"balanced": 2}}):
        with pytest.raises(ModelError):
            F.check_fusion(broken)


def test_exported_bundle_has_a_scope_detector_and_predictions_say_in_scope(exported, clf, rng, tmp_path):
    import shutil

    from melascan.inference import Classifier
    from melascan.inference import card as model_card

    card = model_card.load_card(exported)
    assert "scope" in card["files"] and card["scope"]["val_pass_rate"] >= 0.9
    assert set(card["scope"]) >= {"method", "threshold", "fitted_on", "threshold_from"}
    preds = clf.predict_rgbs([rng.integers(0, 256, (72, 90, 3), dtype=np.uint8) for _ in range(3)])
    assert 0 < card["scope"]["familiar_below"] <= clf.scope.threshold  # a validation quantile of the scores
    for p in preds:
        assert isinstance(p.in_scope, bool) and p.in_scope == (p.scope_score <= clf.scope.threshold)
        assert p.to_dict()["in_scope"] == p.in_scope and not p.fused
        assert p.familiar == (p.scope_score <= card["scope"]["familiar_below"]) and p.to_dict()["familiar"] == p.familiar
    broken = tmp_path / "model"
    shutil.copytree(exported, broken)
    (broken / card["files"]["scope"]["name"]).write_bytes(b"tampered")
    with pytest.raises(ModelError, match="sha256"):
        Classifier(broken)


def test_embedded_model_rejects_generated_non_skin_images_and_keeps_samples():
    from melascan.evaluation.nonskin import non_skin_images
    from melascan.imageio import load_rgb
    from melascan.inference import Classifier
    from melascan.inference.classifier import default_model_dir

    clf = Classifier.default()
    assert clf.scope is not None, "the embedded model ships an out-of-scope detector"
    images = non_skin_images()
    preds = clf.predict_rgbs(list(images.values()))
    kept = [name for name, p in zip(images, preds) if p.in_scope]
    # measured 28 of 29 rejected (docs/model.md: the detector 27, the lesion analysis's colour check 1 more)
    assert len(kept) <= 0.05 * len(images), f"non-skin images scored as dermoscopy: {kept}"  # the goal
    assert not {"printed_text", "printed_text_2", "noise_uniform", "gradient"} & set(kept)
    assert not [name for name in kept if name.startswith("flat_")]
    samples = sorted((default_model_dir().parent / "samples").glob("*.jpg"))
    assert samples and all(p.in_scope for p in clf.predict_rgbs([load_rgb(s) for s in samples]))


def test_the_embedded_model_calls_a_picture_the_lesion_analysis_finds_not_dermoscopic_out_of_scope():
    from melascan.imageio import load_rgb
    from melascan.inference import Classifier
    from melascan.inference.classifier import default_model_dir
    from melascan.lesion import analyze_lesion

    clf = Classifier.default()  # fused or not: the colour check runs on its own without an analysis
    rgb = load_rgb(sorted((default_model_dir().parent / "samples").glob("*.jpg"))[0])
    lesion = analyze_lesion(rgb).to_dict()
    assert clf.predict_rgbs([rgb], lesions=[lesion])[0].in_scope is True
    flagged = {**lesion, "quality": [*lesion["quality"], "not_dermoscopic"]}
    assert clf.predict_rgbs([rgb], lesions=[flagged])[0].in_scope is False
    gray = np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)  # a grayscale picture
    assert clf.predict_rgbs([gray])[0].in_scope is False


def test_leave_one_source_out_catches_a_lesion_input_that_only_works_in_one_source():
    from melascan.export.heads import (cross_validated_fusion, fusion_verdict, leave_one_source_out_fusion,
                                       per_source_auc)

    rng = np.random.default_rng(3)
    sources = np.repeat(["a", "b"], [600, 400])
    y = (rng.random(sources.size) < 0.3).astype(int)
    inputs = rng.normal(size=(y.size, len(F.FEATURES)))
    inputs[:, 0] = 1.2 * y + rng.normal(size=y.size)  # the network's logit: the same in both sources
    inputs[:, 1] = 1.0
    tds = F.FEATURES.index("tds")
    inputs[:, tds] = np.where(sources == "a", 2.0 * y, 0.0) + rng.normal(0, 0.5, y.size)  # tells only in "a"
    network = per_source_auc(y, 1 / (1 + np.exp(-inputs[:, 0])), sources)
    comparison = {"network": network, "fusion_cv": per_source_auc(y, cross_validated_fusion(inputs, y, sources), sources),
                  "fusion_loso": per_source_auc(y, leave_one_source_out_fusion(inputs, y, sources), sources)}
    assert comparison["fusion_cv"]["mean"] > network["mean"]  # in distribution the input looks useful
    assert comparison["fusion_loso"]["mean"] < network["mean"]  # carried to the other source it hurts
    assert fusion_verdict(comparison) == "network"
    assert leave_one_source_out_fusion(inputs, y, np.full(y.size, "a")) is None
    assert fusion_verdict({"network": {"mean": 0.8}, "fusion_cv": {"mean": 0.9}}) == "fusion"


def test_refit_heads_keeps_the_network_and_the_card_and_refits_the_scope(exported, trained_run, second_trained_run,
                                                                           tmp_path, capsys):
    """`melascan export RUN --out DIR --refit-heads`: a folder exported before the familiar cut existed
    gets it, with the same ONNX file and the card's other entries; a folder of another run is refused."""
    import json
    import shutil

    from melascan.cli import main
    from melascan.inference import Classifier
    from melascan.inference import card as model_card

    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    card = model_card.load_card(folder)
    del card["scope"]["familiar_below"], card["scope"]["familiar_from"]
    card["notes"] = "kept by a refit"
    model_card.write_card(card, folder)
    assert Classifier(folder).predict_rgbs([np.full((60, 60, 3), 128, np.uint8)])[0].familiar is None  # no cut: unknown

    assert main(["export", str(trained_run), "--out", str(folder), "--refit-heads"]) == 0
    assert "familiar below" in capsys.readouterr().out
    refit = model_card.load_card(folder)
    assert refit["scope"]["familiar_below"] == pytest.approx(model_card.load_card(exported)["scope"]["familiar_below"])
    assert refit["files"]["onnx"] == card["files"]["onnx"] and refit["notes"] == "kept by a refit"
    assert refit["calibration"] == card["calibration"]
    assert "left_out_source_rejection" not in refit["scope"]  # one source: nothing to leave out
    assert json.loads((folder / "model_card.json").read_text())["scope"]["familiar_below"] > 0

    assert main(["export", str(second_trained_run), "--out", str(folder), "--refit-heads"]) == 2
    assert "was exported from" in capsys.readouterr().err
    assert main(["export", str(trained_run), "--out", str(folder), "--refit-heads", "--int8"]) == 2
    assert "--int8 would change them" in capsys.readouterr().err
    assert model_card.load_card(folder) == refit  # nothing written
