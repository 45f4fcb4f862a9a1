"""The offline EfficientNet-Lite ImageNet weights map exactly onto timm's models."""

import numpy as np
import pytest
import timm
import torch
from skimage.data import chelsea

from melascan.errors import ModelError
from melascan.preprocess import normalize, prepare_pixels
from melascan.training.weights import (
    OFFLINE_MODELS,
    PRETRAINED_MEAN,
    PRETRAINED_STD,
    convert_state_dict,
    create_offline_model,
    timm_to_source_keys,
    weights_path,
)

CAT_CLASSES = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_every_source_tensor_is_used_exactly_once(name):
    source = torch.load(weights_path(name), map_location="cpu", weights_only=True)
    target = timm.create_model(name, pretrained=False).state_dict()
    mapping = timm_to_source_keys(list(target))
    assert sorted(mapping.values()) == sorted(source)  # a bijection: nothing unused, nothing twice
    converted = convert_state_dict(source, target)
    for key, tensor in converted.items():
        assert tensor.shape == target[key].shape
        assert tensor is source[mapping[key]]


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_imagenet_model_sees_a_cat(name):
    """Strict load of the 1000-class model; chelsea() is top-1 a cat at the weights' resolution."""
    model = create_offline_model(name, num_classes=1000).eval()
    size = OFFLINE_MODELS[name][1]
    x = normalize(prepare_pixels(chelsea(), size), PRETRAINED_MEAN, PRETRAINED_STD)
    with torch.no_grad():
        probs = model(torch.from_numpy(x[None])).softmax(1)[0]
    assert int(probs.argmax()) in CAT_CLASSES
    assert float(probs[list(CAT_CLASSES)].sum()) > 0.5


def test_fine_tuning_model_gets_a_fresh_two_class_head():
    model = create_offline_model("efficientnet_lite0", num_classes=2, drop_rate=0.3)
    assert model.get_classifier().out_features == 2
    full = create_offline_model("efficientnet_lite0", num_classes=1000)
    assert torch.equal(model.conv_stem.weight, full.conv_stem.weight)  # the backbone is ImageNet's


def test_mismatches_are_clear_errors():
    source = torch.load(weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    extra = dict(source, **{"_extra.weight": torch.zeros(1)})
    with pytest.raises(ModelError, match="unused in file"):
        convert_state_dict(extra, target)
    wrong = dict(source, **{"_conv_stem.weight": torch.zeros(8, 3, 3, 3)})
    with pytest.raises(ModelError, match="shape mismatch for conv_stem.weight"):
        convert_state_dict(wrong, target)
    with pytest.raises(ModelError, match="no offline ImageNet weights for 'resnet50'"):
        weights_path("resnet50")
    lite1 = timm.create_model("efficientnet_lite1", pretrained=False).state_dict()
    with pytest.raises(ModelError):
        convert_state_dict(source, lite1)  # lite0 file into lite1: deeper network
    assert np.isfinite(float(source["_fc.bias"].sum()))
