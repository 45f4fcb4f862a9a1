"""Losses: focal equals cross-entropy at gamma 0 and alpha 1; alpha and gamma act as documented."""

import torch
import torch.nn.functional as F

from melascan.training.config import RunConfig
from melascan.training.losses import FocalLoss, build_loss


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 2, generator=g) * 3, torch.randint(0, 2, (64,), generator=g)


def test_focal_equals_ce_at_gamma0_alpha1():
    logits, target = _batch()
    assert torch.allclose(FocalLoss(alpha=1.0, gamma=0.0)(logits, target), F.cross_entropy(logits, target), atol=1e-6)


def test_focal_down_weights_easy_examples_and_alpha_weights_malignant():
    logits, target = _batch()
    ce = F.cross_entropy(logits, target, reduction="none")
    focal = FocalLoss(alpha=1.0, gamma=2.0)
    assert focal(logits, target) < ce.mean()
    weighted = FocalLoss(alpha=3.0, gamma=0.0)(logits, target)
    expected = (ce * torch.where(target == 1, 3.0, 1.0)).mean()
    assert torch.allclose(weighted, expected, atol=1e-6)


def test_build_loss_by_name():
    logits, target = _batch()
    assert torch.allclose(build_loss(RunConfig(loss="ce"))(logits, target), F.cross_entropy(logits, target))
    smooth = build_loss(RunConfig(loss="label_smoothing", smoothing=0.2))(logits, target)
    assert torch.allclose(smooth, F.cross_entropy(logits, target, label_smoothing=0.2))
    assert isinstance(build_loss(RunConfig(loss="focal")), FocalLoss)
