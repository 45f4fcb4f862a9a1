"""Training losses on 2-logit outputs: cross-entropy, label smoothing, focal loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) for 2 classes, mean over the batch.

    ``loss_i = -w_i * (1 - p_i)^gamma * log p_i`` with ``p_i`` the probability of the
    true class and ``w_i = alpha`` for malignant samples, 1 for benign ones.
    ``alpha=1, gamma=0`` is exactly cross-entropy; ``alpha > 1`` up-weights melanoma.
    """

    def __init__(self, alpha: float = 1.0, gamma: float = 2.0):
        super().__init__()
        self.alpha, self.gamma = float(alpha), float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        focal = (1.0 - log_p.exp()).clamp(min=0).pow(self.gamma) if self.gamma else 1.0
        weight = torch.where(target == 1, self.alpha, 1.0)
        return (-weight * focal * log_p).mean()


def build_loss(cfg) -> nn.Module:
    """The training criterion named by ``cfg.loss``."""
    if cfg.loss == "ce":
        return nn.CrossEntropyLoss()
    if cfg.loss == "label_smoothing":
        return nn.CrossEntropyLoss(label_smoothing=cfg.smoothing)
    if cfg.loss == "focal":
        return FocalLoss(cfg.focal_alpha, cfg.focal_gamma)
    raise ValueError(f"unknown loss {cfg.loss!r}")
