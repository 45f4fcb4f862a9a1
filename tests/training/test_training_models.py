"""Model factory: timm names, 2 logits, clear errors for impossible weight choices."""

import pytest
import timm
import torch

from melascan.errors import ModelError
from melascan.training.config import RunConfig
from melascan.training.models import CPU_MODELS, SEED_MODELS, build_model


def test_all_listed_models_exist_in_timm():
    for name in SEED_MODELS + CPU_MODELS:
        assert timm.is_model(name), name


@pytest.mark.parametrize("name, pretrained", [("convnext_atto", "none"), ("efficientnet_lite0", "offline")])
def test_two_logits(name, pretrained):
    model = build_model(RunConfig(model=name, pretrained=pretrained, drop_rate=0.3)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 2)


def test_impossible_choices_are_clear_errors():
    with pytest.raises(ModelError, match="no offline ImageNet weights for 'resnet50'"):
        build_model(RunConfig(model="resnet50", pretrained="offline"))
    with pytest.raises(ModelError, match="unknown timm model"):
        build_model(RunConfig(model="resnet_5000", pretrained="none"))
