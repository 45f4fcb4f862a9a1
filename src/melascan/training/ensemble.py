"""Mean-logit ensembles of trained runs, evaluated and exported like one run.

``melascan ensemble RUN RUN ... --out runs/NAME`` writes an ensemble run folder: the first
member's resolved config with ``members`` set, and its ``data.json``. ``training.runs.load_run`` then returns a
``MeanLogitEnsemble`` of the members' best checkpoints, so ``melascan evaluate`` fits the
temperature and thresholds on the ensemble's own validation logits and ``melascan export`` writes
one ONNX file that runs every member and averages their logits.

Members must share the pre-processing (image size, mean/std, colour constancy) and the validation
images (the same val rows of their manifests); the ensemble is then validated on them like a run.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Sequence

import torch

from melascan.errors import DataError, ModelError
from melascan.runfolder import RunFolder
from melascan.training.config import RunConfig

#: What members must agree on: the inputs the exported model takes.
SHARED_PREPROCESSING = ("image_size", "mean", "std", "color_constancy")


class MeanLogitEnsemble(torch.nn.Module):
    """The mean of its members' ``(N, 2)`` logits.

    For export it offers the timm methods ``LogitsAndFeatures`` calls: the members' final feature
    maps and stage outputs concatenated along the channels, ``forward_head`` on such a
    concatenation, and ``get_classifier``, a linear layer on the concatenated pooled features that
    equals the mean of the members' heads (so the CAM of the ensemble is exact when theirs are)."""

    def __init__(self, members: Sequence[torch.nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ModelError("an ensemble needs at least two members")
        self.members = torch.nn.ModuleList(members)
        self.widths = [int(m.num_features) for m in members]
        self.num_features = sum(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outputs = [m.forward_intermediates(x) for m in self.members]
        if len({len(stages) for _, stages in outputs}) != 1:
            raise ModelError("ensemble members have different numbers of stages; they cannot be exported as one")
        try:
            features = torch.cat([f for f, _ in outputs], dim=1)
            stages = [torch.cat(level, dim=1) for level in zip(*(s for _, s in outputs))]
        except RuntimeError as exc:
            raise ModelError(f"ensemble members' feature maps differ in size ({exc})") from None
        return features, stages

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            raise ModelError("an ensemble has no single pre-logits vector")
        chunks = torch.split(features, self.widths, dim=1)
        return torch.stack([m.forward_head(c) for m, c in zip(self.members, chunks)]).mean(dim=0)

    def get_classifier(self) -> torch.nn.Linear:
        """``Linear(sum C_k, 2)`` whose weight is ``[W_1 ... W_K] / K`` and bias the mean ``b_k``."""
        heads = [m.get_classifier() for m in self.members]
        if not all(isinstance(h, torch.nn.Linear) for h in heads):
            raise ModelError("every ensemble member needs a linear classifier")
        k = len(heads)
        fc = torch.nn.Linear(self.num_features, heads[0].out_features)
        with torch.no_grad():
            fc.weight.copy_(torch.cat([h.weight for h in heads], dim=1) / k)
            fc.bias.copy_(sum(h.bias if h.bias is not None else torch.zeros_like(fc.bias) for h in heads) / k)
        return fc


def validation_images(run: str | Path) -> list[tuple]:
    """``(path, label, source)`` of each validation image of the run's manifest: runs that are
    compared or averaged must have been validated on the same list."""
    folder = RunFolder(run)
    return [(r.path, r.label_id, r.source) for r in folder.manifest(folder.read_config()).subset("val")]


def member_configs(cfg: RunConfig) -> list[RunConfig]:
    """The members' configs, checked to share ``SHARED_PREPROCESSING`` with ``cfg``."""
    configs = []
    for member in cfg.members or []:
        run = RunFolder(member)
        member_cfg = run.read_config()
        if member_cfg.members:
            raise DataError(f"{member}: an ensemble cannot have an ensemble as a member")
        different = [k for k in SHARED_PREPROCESSING if getattr(member_cfg, k) != getattr(cfg, k)]
        if different:
            raise DataError(f"{member}: its {', '.join(different)} differ from the ensemble's first member; "
                            "members must share the pre-processing")
        configs.append(member_cfg)
    return configs


def architecture(cfg: RunConfig) -> str:
    """``cfg.model``, or for an ensemble e.g. ``mean-logit ensemble of 3 x efficientnet_lite0``."""
    if not cfg.members:
        return cfg.model
    names = [c.model for c in member_configs(cfg)]
    parts = [f"{names.count(n)} x {n}" for n in dict.fromkeys(names)]
    return "mean-logit ensemble of " + " + ".join(parts)


def make_ensemble(members: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Write the ensemble run folder ``out_dir`` for these member run folders (see the module doc)."""
    members = [str(Path(m)) for m in members]
    if len(members) < 2 or len(set(members)) != len(members):
        raise DataError("an ensemble needs at least two different member runs")
    first = RunFolder(members[0])
    base = first.read_config()
    for member in members:
        RunFolder(member).checkpoint("best")  # a ModelError names the missing file
    cfg = dataclasses.replace(base, members=members, init_from=None).validate()
    member_configs(cfg)
    rows = validation_images(members[0])
    for member in members[1:]:
        if validation_images(member) != rows:
            raise DataError(f"{member} was validated on other images than {members[0]}")
    out = RunFolder(out_dir)
    if out.config_path.exists():
        raise DataError(f"{out.path} already holds a run; choose a new --out")
    out.path.mkdir(parents=True, exist_ok=True)
    out.write_config(cfg)
    shutil.copyfile(first.data_path, out.data_path)
    return out.path
