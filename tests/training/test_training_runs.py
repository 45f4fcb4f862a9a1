"""load_run / predict_logits: the API evaluation and ONNX export build on (on the shared
``trained_run``, tests/conftest.py)."""


import numpy as np
import pytest
import torch

from melascan.data.manifest import read_manifest
from melascan.errors import ModelError
from melascan.imageio import load_rgb
from melascan.preprocess import normalize, prepare_pixels, tta_views
from melascan.training.runs import load_run, predict_logits


def test_load_run_restores_the_best_weights(trained_run):
    model, cfg = load_run(trained_run)
    assert not model.training and cfg.model == "resnet10t" and cfg.color_constancy == "shades_of_gray"
    best = torch.load(trained_run / "checkpoints/best.pt", weights_only=True)["model"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, best[key])
    load_run(trained_run, "last")
    with pytest.raises(ModelError, match="checkpoint not found"):
        load_run(trained_run, "epoch_099")


def test_predict_logits_uses_the_inference_preprocessing(trained_run):
    model, cfg = load_run(trained_run)
    manifest = read_manifest(cfg.manifest)
    paths = manifest.files("test")
    logits = predict_logits(model, cfg, paths, batch_size=3)
    assert logits.shape == (len(paths), 2) and logits.dtype == np.float32
    arrays = [load_rgb(p) for p in paths]
    np.testing.assert_allclose(predict_logits(model, cfg, arrays), logits, atol=1e-5)
    x = normalize(np.stack([prepare_pixels(a, cfg.image_size, cfg.color_constancy) for a in arrays]), cfg.mean, cfg.std)
    with torch.no_grad():
        direct = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, direct, atol=1e-4)
    # the model learned the synthetic task: malignant (bright) images get the higher malignant logit
    labels = np.array(manifest.label_ids("test"))
    assert (logits.argmax(1) == labels).mean() >= 0.75


def test_tta_is_the_mean_over_the_8_dihedral_views(trained_run):
    model, cfg = load_run(trained_run)
    images = [load_rgb(p) for p in read_manifest(cfg.manifest).files("test")[:3]]
    tta = predict_logits(model, cfg, images, tta=True)
    x = normalize(np.stack([prepare_pixels(a, cfg.image_size, cfg.color_constancy) for a in images]), cfg.mean, cfg.std)
    views = tta_views(x)
    assert len(views) == 8 and len({v.tobytes() for v in views}) == 8
    with torch.no_grad():
        expected = np.mean([model(torch.from_numpy(v)).numpy() for v in views], axis=0)
    np.testing.assert_allclose(tta, expected, atol=1e-4)


def test_tta_with_fewer_views_is_the_mean_over_the_first_views(trained_run):
    model, cfg = load_run(trained_run)
    images = [load_rgb(p) for p in read_manifest(cfg.manifest).files("test")[:2]]
    x = normalize(np.stack([prepare_pixels(a, cfg.image_size, cfg.color_constancy) for a in images]), cfg.mean, cfg.std)
    with torch.no_grad():
        per_view = [model(torch.from_numpy(v)).numpy() for v in tta_views(x, 8)]
    for n in (2, 4):
        np.testing.assert_allclose(predict_logits(model, cfg, images, tta=n), np.mean(per_view[:n], axis=0), atol=1e-4)
    np.testing.assert_allclose(predict_logits(model, cfg, images, tta=1), per_view[0], atol=1e-5)
