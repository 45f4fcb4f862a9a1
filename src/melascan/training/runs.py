"""Use a trained run: ``load_run`` and ``predict_logits`` (called by evaluation and ONNX export).

Pre-processing is the inference one: ``preprocess.prepare_pixels(rgb, cfg.image_size,
cfg.color_constancy)`` then ``preprocess.normalize(x, cfg.mean, cfg.std)``.

Test-time augmentation (``tta=True``, or a view count 2/4/8) runs each image through
symmetries of the square (``preprocess.tta_views``: 8 for ``True``) and returns the **mean
of the logit vectors**; costs that many times the plain prediction. An exported model
with ``input.test_time_views`` does the same (``inference.classifier``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from melascan.errors import DataError, ModelError
from melascan.imageio import load_rgb
from melascan.preprocess import normalize, prepare_pixels, tta_view_count, tta_views
from melascan.runfolder import RunFolder
from melascan.training.config import RunConfig
from melascan.training.models import build_model

ImageInput = Union[str, os.PathLike, np.ndarray]


def load_run(run_dir: str | Path, checkpoint: str = "best") -> tuple[torch.nn.Module, RunConfig]:
    """The run's model (on CPU, in eval mode) with the weights of ``checkpoint``, and its RunConfig;
    for an ensemble folder (``melascan ensemble``) the mean-logit ensemble of its members."""
    run = RunFolder(run_dir)
    cfg = run.read_config()
    if cfg.mean is None or cfg.std is None:
        raise DataError(f"{run.config_path}: mean/std missing (not written by `melascan train`?)")
    if cfg.members:
        from melascan.training.ensemble import MeanLogitEnsemble, member_configs

        if checkpoint != "best":
            raise DataError(f"{run.path} is an ensemble of its members' best checkpoints; it has no {checkpoint!r}")
        member_configs(cfg)  # they must share the pre-processing
        return MeanLogitEnsemble([load_run(member)[0] for member in cfg.members]).eval(), cfg
    path = run.checkpoint(checkpoint)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a ModelError
        raise ModelError(f"{path}: cannot read checkpoint ({exc})") from None
    model = build_model(dataclasses.replace(cfg, pretrained="none"))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise ModelError(f"{path}: weights do not match {cfg.model} ({str(exc)[:200]})") from None
    return model.eval(), cfg


def _prepared(image: ImageInput, cfg: RunConfig) -> np.ndarray:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"expected an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
        rgb = image
    else:
        rgb = load_rgb(image)
    return prepare_pixels(rgb, cfg.image_size, cfg.color_constancy)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, cfg: RunConfig, images: Sequence[ImageInput], *,
                   tta: bool | int = False, batch_size: int = 64) -> np.ndarray:
    """``(N, 2)`` float32 logits (benign, malignant) for image paths or uint8 RGB arrays.

    With ``tta`` the logits are the mean over ``tta_views`` (8 for ``True``; see module doc).
    The model runs on the device its parameters are on.
    """
    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(images), 2), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        batch = normalize(np.stack([_prepared(img, cfg) for img in chunk]), cfg.mean, cfg.std)
        views = tta_views(batch, tta_view_count(tta))
        logits = sum(model(torch.from_numpy(v).to(device)).float().cpu().numpy() for v in views) / len(views)
        out[start : start + len(chunk)] = logits
    return out
