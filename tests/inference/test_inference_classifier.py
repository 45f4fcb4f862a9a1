"""The torch-free Classifier: probabilities, labels, batches, CAM, inputs, model checks."""

from __future__ import annotations

import io
import json
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

from melascan import preprocess
from melascan.errors import ImageError, ModelError
from melascan.inference import Classifier, calibrated_probability, label_for
from melascan.inference import card as model_card
from melascan.inference.cam import cam_to_image, class_activation_map


def test_probability_is_temperature_scaled_softmax(clf, rng):
    rgb = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    p = clf.predict(rgb)
    z = np.array(p.logits, dtype=np.float64) / clf.temperature
    softmax = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert 0.0 <= p.probability <= 1.0
    assert p.probability == pytest.approx(softmax[1], abs=1e-9)
    assert p.temperature == clf.temperature != 1.0  # a fitted temperature is really applied


def test_calibrated_probability_is_stable_and_bounded():
    logits = np.array([[0.0, 0.0], [-1000.0, 1000.0], [1000.0, -1000.0], [1.0, 3.0]])
    p = calibrated_probability(logits, 2.0)
    np.testing.assert_allclose(p[:3], [0.5, 1.0, 0.0])
    assert p[3] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_labels_follow_each_threshold(clf):
    t_bal, t_scr = clf.thresholds["balanced"], clf.thresholds["screening"]
    assert label_for(t_bal, t_bal) == "malignant" and label_for(np.nextafter(t_bal, 0), t_bal) == "benign"
    for target in (0.02, 0.5, 0.98):
        z = np.log(target / (1 - target)) * clf.temperature  # logits giving P = target
        p = clf.prediction_from_logits(np.array([0.0, z]))
        assert p.probability == pytest.approx(target)
        assert p.labels == {"balanced": label_for(target, t_bal), "screening": label_for(target, t_scr)}
        assert p.thresholds == clf.thresholds
    assert json.dumps(p.to_dict())


def test_batch_equals_single(clf, rng):
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((64, 64), (80, 120), (150, 100))]
    single = [clf.predict(img, with_cam=True) for img in images]
    batch = clf.predict_batch(images, batch_size=2, with_cam=True)
    for s, b in zip(single, batch):
        assert b.probability == pytest.approx(s.probability, abs=1e-6)
        np.testing.assert_allclose(b.cam, s.cam, atol=1e-5)


def test_cam_has_input_size_and_unit_range(clf, rng):
    rgb = rng.integers(0, 256, (90, 150, 3), dtype=np.uint8)
    cam = clf.cam(rgb)
    assert cam.shape == (90, 150) and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert not cam[:, :30].any() and not cam[:, 120:].any()  # outside the centre square the model saw
    p = clf.predict(rgb, with_cam=True)
    np.testing.assert_array_equal(p.cam, cam)


def test_cam_functions():
    features = np.zeros((3, 2, 2), np.float32)
    features[0, 0, 1] = 2.0
    features[1, 1, 0] = 5.0
    weight = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)  # malignant <- channel 0
    cam = class_activation_map(features, weight)
    np.testing.assert_allclose(cam, [[0.0, 1.0], [0.0, 0.0]])  # channel 1 is benign evidence: ReLU
    assert not class_activation_map(np.zeros((3, 2, 2)), weight).any()
    up = cam_to_image(cam, 10, 20)
    assert up.shape == (10, 20) and up[:, :5].max() == 0 and up[:, 15:].max() == 0 and up.max() <= 1


def test_runtime_input_equals_training_preprocessing(clf, rng):
    rgb = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    expected = preprocess.normalize(
        preprocess.prepare_pixels(rgb, clf.image_size, "shades_of_gray"), clf.card["input"]["mean"], clf.card["input"]["std"]
    )
    np.testing.assert_array_equal(clf.prepare(rgb), expected)
    assert clf.color_constancy == "shades_of_gray"
    assert not np.array_equal(clf.prepare(rgb), preprocess.normalize(preprocess.prepare_pixels(rgb, clf.image_size), clf.mean, clf.std))


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _inputs(rng) -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Encoded images of every awkward mode -> (bytes, expected (H, W) after loading)."""
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    base = Image.fromarray(rgb)
    gray16 = Image.fromarray((rng.integers(0, 65535, (60, 80))).astype(np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return {
        "RGBA": (_encode(Image.fromarray(rng.integers(0, 256, (60, 80, 4), dtype=np.uint8), "RGBA"), "PNG"), (60, 80)),
        "L": (_encode(base.convert("L"), "PNG"), (60, 80)),
        "I;16": (_encode(gray16, "PNG"), (60, 80)),
        "CMYK": (_encode(base.convert("CMYK"), "JPEG"), (60, 80)),
        "P": (_encode(base.convert("P"), "PNG"), (60, 80)),
        "EXIF-rotated JPEG": (_encode(base, "JPEG", exif=exif), (80, 60)),
    }


def test_every_image_mode_loads_and_gets_a_cam_at_its_size(clf, rng, tmp_path):
    for mode, (data, shape) in _inputs(rng).items():
        path = tmp_path / f"{mode.replace(';', '_').replace(' ', '_')}.img"
        path.write_bytes(data)
        for source in (data, path):
            p = clf.predict(source, with_cam=True)
            assert 0.0 <= p.probability <= 1.0, mode
            assert p.cam.shape == shape, mode
    assert clf.predict(Image.open(io.BytesIO(_inputs(rng)["EXIF-rotated JPEG"][0])), with_cam=True).cam.shape == (80, 60)


def test_bad_inputs_raise_image_error(clf, tmp_path, rng):
    jpeg = _encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    bad = {"empty.jpg": b"", "text.jpg": b"this is not an image", "truncated.jpg": jpeg[: len(jpeg) // 2]}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError, match=name.split(".")[0]):
            clf.predict(tmp_path / name)
    with pytest.raises(ImageError):
        clf.predict(b"")
    with pytest.raises(ImageError):
        clf.predict(np.zeros((10, 10), np.float32))
    with pytest.raises(ImageError):
        clf.predict_batch([np.zeros((40, 40, 3), np.uint8), tmp_path / "text.jpg"])


def test_shared_classifier_is_thread_safe(clf, rng):
    images = [rng.integers(0, 256, (70, 70, 3), dtype=np.uint8) for _ in range(4)]
    expected = [clf.predict(img).probability for img in images]
    results: dict[int, list[float]] = {}

    def work(k: int) -> None:
        results[k] = [clf.predict(img).probability for _ in range(3) for img in images]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert results[k] == pytest.approx(expected * 3, abs=1e-6)


def test_model_loading_errors(exported, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Classifier(tmp_path / "missing")
    with pytest.raises(ModelError, match="model card not found"):
        Classifier(tmp_path)
    card = json.loads((exported / "model_card.json").read_text())

    corrupt = tmp_path / "corrupt"
    shutil.copytree(exported, corrupt)
    onnx = corrupt / card["files"]["onnx"]["name"]
    onnx.write_bytes(onnx.read_bytes()[:-100])
    with pytest.raises(ModelError, match="sha256"):
        Classifier(corrupt)
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        Classifier(corrupt, verify=False)

    wrong_size = tmp_path / "wrong_size"
    shutil.copytree(exported, wrong_size)
    bad = dict(card, input=dict(card["input"], image_size=128))
    (wrong_size / "model_card.json").write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="image_size"):
        Classifier(wrong_size)

    bad_card = tmp_path / "bad_card"
    shutil.copytree(exported, bad_card)
    (bad_card / "model_card.json").write_text(json.dumps(dict(card, calibration={"temperature": -1})))
    with pytest.raises(ModelError, match="temperature"):
        Classifier(bad_card)
    (bad_card / "model_card.json").write_text("{not json")
    with pytest.raises(ModelError, match="JSON"):
        Classifier(bad_card)


def test_model_can_be_named_by_its_onnx_file_or_card(exported, clf):
    onnx = exported / clf.card["files"]["onnx"]["name"]
    assert Classifier(onnx).card == clf.card
    assert Classifier(exported / "model_card.json", threads=1).threads == 1


def test_default_model_is_embedded_and_consistent():
    clf = Classifier.default()
    assert Classifier.default() is clf
    card = clf.card
    model_card.verify_files(card, clf.model_dir)  # sha256 of the .onnx and the head match the card
    assert clf.model_dir.name == "model" and clf.model_dir.parent.name == "assets"
    assert card["status"] in ("trained", "untrained")
    if card["status"] == "untrained":
        assert model_card.PLACEHOLDER_NOTE in card["warnings"]
        assert "PLACEHOLDER" in (clf.model_dir / "model_card.md").read_text()
    assert clf.onnx_path.stat().st_size <= 25e6
    assert len(list(clf.model_dir.glob("*.onnx"))) == 1 and not list(clf.model_dir.glob("*.data"))
    p = clf.predict(np.full((224, 224, 3), 128, np.uint8), with_cam=True)
    assert 0 <= p.probability <= 1 and p.cam.shape == (224, 224)


@pytest.mark.parametrize("field, value", [("color_constancy", "gray_world"), ("mean", [0.5, "x", 0.5]),
                                          ("test_time_views", 3), ("test_time_views", True)])
def test_card_with_a_bad_input_field_is_refused_at_load(field, value):
    import copy

    from melascan.errors import ModelError
    from melascan.inference import card as model_card
    from melascan.inference.classifier import default_model_dir

    card = copy.deepcopy(model_card.load_card(default_model_dir()))
    card["input"][field] = value
    with pytest.raises(ModelError):
        model_card.validate_card(card)


def test_predict_refuses_a_batch_size_below_one(capsys):
    from melascan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["predict", "x.jpg", "--batch-size", "0"])
    assert exc.value.code == 2 and "must be at least 1" in capsys.readouterr().err
