"""Auxiliary heads trained beside the 2-logit classifier and dropped afterwards.

Both read the classifier's pooled features, so they shape what the features hold; the
exported model is the plain classifier either way.

* **diagnosis** (``RunConfig.diagnosis_loss``): a linear layer that predicts the
  manifest's diagnosis (nevus, keratosis, ... where a source records one), so the
  features must tell apart what the binary label lumps together.
* **source adversary** (``RunConfig.source_adversary``, DANN: Ganin et al. 2016): a small
  network that predicts which source an image came from, through a gradient-reversal
  layer. The head learns to tell the sources apart; the features get the opposite
  gradient, pushing them to carry less of the source (with every (source, class) cell
  drawn equally often, the source carries no label in training). Measured: it kept its
  own head at chance but not a linear read-out fitted afterwards (docs/model.md, session 12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from melascan.errors import DataError


def class_vocabulary(values) -> list[str]:
    """The distinct non-empty values (diagnoses, sources), sorted: a head's classes."""
    return sorted({str(v) for v in values if v})


def class_targets(values, vocabulary: list[str]) -> np.ndarray:
    """Class index of each value in ``vocabulary``; -1 where it has none."""
    index = {d: i for i, d in enumerate(vocabulary)}
    return np.array([index.get(str(d), -1) for d in values], dtype=np.int64)


def adversary_strength(progress: float) -> float:
    """Ganin's ramp of the reversed gradient, ``2 / (1 + exp(-10 p)) - 1``: 0 at the start of
    training (``progress`` p = 0), 0.99 by the end (p = 1), so the source head learns first."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-strength`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.strength * grad, None


class AuxiliaryHeads(nn.Module):
    """``model`` plus a diagnosis head (``n_diagnoses`` > 0) and/or a source adversary
    (``n_sources`` > 0) over its pooled features. ``forward`` returns
    ``(logits, {"diagnosis": ..., "source": ...})`` with the heads it has; set
    ``reversal`` (the adversary's gradient strength) before each step."""

    def __init__(self, model: nn.Module, *, n_diagnoses: int = 0, n_sources: int = 0, hidden: int = 256):
        super().__init__()
        self.model = model
        self.diagnosis = nn.Linear(model.num_features, n_diagnoses) if n_diagnoses else None
        self.source = (nn.Sequential(nn.Linear(model.num_features, hidden), nn.ReLU(), nn.Linear(hidden, n_sources))
                       if n_sources else None)
        self.reversal = 0.0

    def forward(self, x: torch.Tensor):
        pooled = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        extra = {}
        if self.diagnosis is not None:
            extra["diagnosis"] = self.diagnosis(pooled)
        if self.source is not None:
            extra["source"] = self.source(GradientReversal.apply(pooled, self.reversal))
        return self.model.get_classifier()(pooled), extra

    def head_states(self) -> dict:
        """The heads' weights, as checkpoints keep them (``diagnosis_head``, ``source_head``)."""
        return {f"{name}_head": head.state_dict() for name, head in self._heads()}

    def load_head_states(self, state: dict) -> None:
        for name, head in self._heads():
            head.load_state_dict(state[f"{name}_head"])

    def _heads(self):
        return [(name, head) for name, head in (("diagnosis", self.diagnosis), ("source", self.source))
                if head is not None]


@dataclass
class AuxiliaryTargets:
    """What the heads learn, one class index per training image (-1 = none), and their weights."""

    diagnosis_names: list[str] = field(default_factory=list)
    diagnoses: np.ndarray | None = None
    diagnosis_weight: float = 0.0
    source_names: list[str] = field(default_factory=list)
    sources: np.ndarray | None = None
    adversary_weight: float = 0.0

    @classmethod
    def for_run(cls, cfg, diagnoses, sources) -> "AuxiliaryTargets | None":
        """The targets of the heads ``cfg`` asks for (``diagnosis_loss``, ``source_adversary``)
        from the training images' diagnoses and sources; None when it asks for neither.
        ``DataError`` when a head would have fewer than two classes."""
        names, targets = {}, {}
        for head, key, values, plural in (("diagnosis", "diagnosis_loss", diagnoses, "diagnoses"),
                                          ("source", "source_adversary", sources, "sources")):
            names[head] = class_vocabulary(values) if getattr(cfg, key) else []
            if getattr(cfg, key) and len(names[head]) < 2:
                raise DataError(f"{key} needs at least two {plural} in {cfg.manifest}'s training images "
                                "(a multi-source manifest with diagnoses: re-run `melascan prepare --base ... "
                                "--ham ...`)")
            targets[head] = class_targets(values, names[head]) if names[head] else None
        if not (names["diagnosis"] or names["source"]):
            return None
        return cls(diagnosis_names=names["diagnosis"], diagnoses=targets["diagnosis"],
                   diagnosis_weight=cfg.diagnosis_loss, source_names=names["source"], sources=targets["source"],
                   adversary_weight=cfg.source_adversary)

    def data_entries(self) -> dict:
        """The heads' classes, as the run folder's data.json records them."""
        return {key: names for key, names in (("diagnosis_head", self.diagnosis_names),
                                              ("source_adversary", self.source_names)) if names}

    def describe(self) -> str:
        """The heads in words, for the training log."""
        parts = []
        if self.diagnosis_names:
            parts.append(f"diagnosis head ({self.diagnosis_weight:g} x cross-entropy over "
                         f"{', '.join(self.diagnosis_names)})")
        if self.source_names:
            parts.append(f"source adversary over {', '.join(self.source_names)} (reversed gradient up to "
                         f"{self.adversary_weight:g})")
        return ", ".join(parts)

    def build(self, model: nn.Module) -> AuxiliaryHeads:
        """``model`` wrapped with these heads."""
        return AuxiliaryHeads(model, n_diagnoses=len(self.diagnosis_names), n_sources=len(self.source_names))

    def loss(self, extra: dict, index: np.ndarray, device: torch.device) -> torch.Tensor:
        """The weighted sum of the heads' cross-entropies over the images of the batch that
        have a target. The adversary's weight scales the reversed gradient (``reversal``), not
        this loss: its head always learns at full strength."""
        total = torch.zeros((), device=device)
        for name, targets, weight in (("diagnosis", self.diagnoses, self.diagnosis_weight),
                                      ("source", self.sources, 1.0)):
            if name not in extra:
                continue
            target = torch.as_tensor(targets[index], device=device)
            known = target >= 0
            total = total + weight * (F.cross_entropy(extra[name][known].float(), target[known]) if known.any()
                                      else extra[name].sum() * 0.0)
        return total
