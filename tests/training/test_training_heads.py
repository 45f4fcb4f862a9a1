"""Auxiliary heads: gradient reversal, the adversary's ramp, the heads' losses."""

import numpy as np
import pytest
import timm
import torch

from melascan.training.heads import (
    AuxiliaryHeads,
    AuxiliaryTargets,
    GradientReversal,
    adversary_strength,
    class_targets,
    class_vocabulary,
)


def test_gradient_reversal_is_identity_forward_and_negates_backward():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = GradientReversal.apply(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_adversary_strength_ramps_from_zero_to_almost_one():
    values = [adversary_strength(p) for p in np.linspace(0, 1, 11)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.9999, abs=1e-3)
    assert all(a < b for a, b in zip(values, values[1:]))
    assert adversary_strength(-1) == 0.0 and adversary_strength(2) == values[-1]


def test_class_vocabulary_and_targets_leave_missing_values_out():
    vocab = class_vocabulary(["nv", "", "mel", "nv"])
    assert vocab == ["mel", "nv"]
    assert class_targets(["nv", "", "mel", "bcc"], vocab).tolist() == [1, -1, 0, -1]


def _heads(**kwargs):
    torch.manual_seed(0)
    return AuxiliaryHeads(timm.create_model("resnet10t", num_classes=2), **kwargs)


def test_source_head_pushes_the_features_against_the_source():
    """The adversary's own weights descend its loss; the backbone gets the reversed gradient."""
    model = _heads(n_sources=2)
    x, index = torch.rand(4, 3, 32, 32), np.arange(4)
    aux = AuxiliaryTargets(sources=np.array([0, 1, 0, 1]), adversary_weight=1.0)

    def backbone_grad(reversal):
        model.zero_grad()
        model.reversal = reversal
        logits, extra = model(x)
        assert logits.shape == (4, 2) and set(extra) == {"source"} and extra["source"].shape == (4, 2)
        aux.loss(extra, index, torch.device("cpu")).backward()
        return model.model.conv1[0].weight.grad.clone(), model.source[0].weight.grad.clone()

    plain_backbone, plain_head = backbone_grad(-1.0)  # a reversal of -1 is no reversal at all
    reversed_backbone, reversed_head = backbone_grad(1.0)
    assert torch.allclose(reversed_backbone, -plain_backbone, atol=1e-7)
    assert torch.allclose(reversed_head, plain_head)
    assert backbone_grad(0.0)[0].abs().max() == 0  # no reversal yet: the features are left alone


def test_heads_loss_skips_images_without_a_target_and_weights_the_diagnosis():
    model = _heads(n_diagnoses=3, n_sources=2)
    _, extra = model(torch.rand(4, 3, 32, 32))
    assert set(extra) == {"diagnosis", "source"} and extra["diagnosis"].shape == (4, 3)
    dx = np.array([0, -1, 2, -1])
    only_dx = AuxiliaryTargets(diagnoses=dx, diagnosis_weight=0.5)
    expected = 0.5 * torch.nn.functional.cross_entropy(extra["diagnosis"][[0, 2]], torch.tensor([0, 2]))
    assert torch.allclose(only_dx.loss({"diagnosis": extra["diagnosis"]}, np.arange(4), torch.device("cpu")), expected)
    none_known = AuxiliaryTargets(diagnoses=np.full(4, -1), diagnosis_weight=0.5)
    assert none_known.loss({"diagnosis": extra["diagnosis"]}, np.arange(4), torch.device("cpu")) == 0
    assert set(model.head_states()) == {"diagnosis_head", "source_head"}
