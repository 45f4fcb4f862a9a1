"""Studies: the seed's comparison grids, each a loop over RunConfigs.

``run_study(base, "augment", out)`` trains one run per variant into
``out/<variant>/`` (an ordinary run folder) and writes ``out/results.csv`` with one
row per variant. Finished variants are skipped and interrupted ones resumed, so
re-running the same command continues a study.

Grids (each variant = overrides of the base config):

- ``augment``: every recipe of the seed's table 4 (``baseline``, F1-F5, C1-C8);
- ``models``: the seed's six families (``resnet50``, ``efficientnet_b0``,
  ``densenet121``, ``convnext_tiny``, ``vgg16_bn``, ``inception_v3``). Offline
  ImageNet weights exist only for EfficientNet-Lite, so with ``pretrained=offline``
  these train from scratch (``pretrained=none``, recorded in results.csv); use
  ``--set pretrained=timm`` with internet access for ImageNet weights;
- ``strategies``: imbalance and colour strategies: ``ce`` (plain), ``ws``
  (class-weighted sampling), ``label_smoothing`` (0.1), ``focal`` (alpha 3, gamma 2),
  ``ws_focal``, ``shades_of_gray`` (colour constancy).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

from melascan.errors import DataError
from melascan.training.config import RunConfig, config_from_dict
from melascan.training.models import SEED_MODELS
from melascan.training.recipes import SEED_RECIPES
from melascan.training.weights import OFFLINE_MODELS

log = logging.getLogger("melascan.training")

STUDY_GRIDS: dict[str, dict[str, dict]] = {
    "augment": {name: {"recipe": name} for name in SEED_RECIPES},
    "models": {name: {"model": name} for name in SEED_MODELS},
    "strategies": {
        "ce": {},
        "ws": {"weighted_sampling": True},
        "label_smoothing": {"loss": "label_smoothing", "smoothing": 0.1},
        "focal": {"loss": "focal", "focal_alpha": 3.0, "focal_gamma": 2.0},
        "ws_focal": {"weighted_sampling": True, "loss": "focal", "focal_alpha": 1.0, "focal_gamma": 2.0},
        "shades_of_gray": {"color_constancy": "shades_of_gray"},
    },
}

RESULT_COLUMNS = ("variant", "overrides", "model", "pretrained", "best_epoch", "stopped_epoch", "early_stopped",
                  "val_loss", "val_acc", "val_f1", "val_auc", "seconds", "run_dir")


def study_configs(base: RunConfig, grid: str, only: list[str] | None = None) -> dict[str, RunConfig]:
    """``variant name -> RunConfig`` of ``grid`` over ``base`` (optionally only some variants)."""
    if grid not in STUDY_GRIDS:
        raise DataError(f"unknown study grid {grid!r}; choose from {', '.join(STUDY_GRIDS)}")
    variants = STUDY_GRIDS[grid]
    unknown = sorted(set(only or []) - set(variants))
    if unknown:
        raise DataError(f"unknown variant(s) {unknown} for grid {grid}; choose from {', '.join(variants)}")
    configs = {}
    for name, overrides in variants.items():
        if only and name not in only:
            continue
        cfg = config_from_dict(overrides, source=f"study {grid}/{name}", base=base)
        if cfg.pretrained == "offline" and cfg.model not in OFFLINE_MODELS:
            cfg = dataclasses.replace(cfg, pretrained="none")
        configs[name] = cfg.validate()
    return configs


def run_study(base: RunConfig, grid: str, out_dir: str | Path, only: list[str] | None = None) -> list[dict]:
    """Train every variant of ``grid`` (skipping finished ones); write and return the results table."""
    from melascan.training.engine import train

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    configs = study_configs(base, grid, only)
    for i, (name, cfg) in enumerate(configs.items(), start=1):
        run_dir = out_dir / name
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        if summary and summary.get("finished"):
            log.info("study %s [%d/%d] %s: already finished, skipped", grid, i, len(configs), name)
        else:
            resume = (run_dir / "checkpoints" / "last.pt").is_file()
            log.info("study %s [%d/%d] %s%s", grid, i, len(configs), name, " (resuming)" if resume else "")
            summary = train(cfg, run_dir, resume=resume)
        best = summary["best"]
        rows.append({
            "variant": name, "overrides": json.dumps(STUDY_GRIDS[grid][name]), "model": cfg.model,
            "pretrained": cfg.pretrained, "best_epoch": summary["best_epoch"],
            "stopped_epoch": summary["stopped_epoch"], "early_stopped": summary["early_stopped"],
            **{k: best.get(k) for k in ("val_loss", "val_acc", "val_f1", "val_auc")},
            "seconds": summary["seconds"], "run_dir": str(run_dir),
        })
        _write_results(out_dir / "results.csv", rows)
    return rows


def _write_results(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
