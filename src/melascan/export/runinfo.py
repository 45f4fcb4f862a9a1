"""Read what a training run folder says about a model, for its card (no torch).

Only files that exist are read and only numbers found in them are copied: a card
never shows a metric that was not measured. Layout (docs/architecture.md)::

    runs/NAME/config.yaml, data.json, summary.json       written by `melascan train`
    runs/NAME/calibration.json (calibration_<ckpt>.json)  written by `melascan evaluate`
    runs/NAME/eval/<name>/metrics.json                    one per evaluated set
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from melascan.errors import DataError

log = logging.getLogger(__name__)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None
    return value if isinstance(value, dict) else None


def _checkpoint_suffix(checkpoint: str) -> str:
    """The evaluation helper's folder-safe spelling of a checkpoint name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", checkpoint).strip("._") or "folder"


def read_calibration(run_dir: str | Path, checkpoint: str = "best") -> dict | None:
    """``{"temperature", "thresholds": {"balanced", "screening"}, "source"}`` or ``None``
    when the run has no calibration file for this checkpoint."""
    run_dir = Path(run_dir)
    name = "calibration.json" if checkpoint == "best" else f"calibration_{_checkpoint_suffix(checkpoint)}.json"
    path = run_dir / name
    cal = _read_json(path)
    if cal is None:
        return None
    try:
        return {
            "temperature": float(cal["temperature"]),
            "thresholds": {k: float(cal["thresholds"][k]) for k in ("balanced", "screening")},
            "source": str(path),
            "fitted_on": cal.get("fitted_on"),
            "command": cal.get("command"),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: expected temperature and thresholds.balanced/screening ({exc})") from None


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _scores(block: Any) -> dict[str, Any]:
    """Headline numbers of one ``score()`` block of metrics.json (plain, not TTA)."""
    out = {
        "roc_auc": _get(block, "ranking", "roc_auc"),
        "roc_auc_ci": _get(block, "ranking", "roc_auc_ci"),
        "pr_auc": _get(block, "ranking", "pr_auc"),
        "ece": _get(block, "ranking", "ece"),
        "brier": _get(block, "ranking", "brier"),
    }
    for op in ("0.5", "balanced", "screening"):
        for metric in ("sensitivity", "specificity", "accuracy", "f1"):
            out[f"{metric}_{op}"] = _get(block, "thresholds", op, metric)
    return {k: v for k, v in out.items() if v is not None}


def summarize_metrics(metrics: dict, source: str | None = None) -> dict[str, Any]:
    """The card's summary of one ``eval/<name>/metrics.json``: image counts, ROC-AUC,
    sensitivity/specificity at both thresholds, and the same without leaked images
    (the overlap with training) when the evaluation measured them."""
    summary: dict[str, Any] = {
        "n_images": metrics.get("n_images"),
        "n_malignant": metrics.get("n_malignant"),
        **_scores(metrics.get("plain")),
    }
    clean = metrics.get("without_leaked")
    if isinstance(clean, dict):
        summary["n_images_without_leaked"] = clean.get("n_images")
        summary.update({f"{k}_without_leaked": v for k, v in _scores(clean.get("plain")).items()})
    leakage = metrics.get("leakage")
    if isinstance(leakage, dict):
        summary["leakage"] = {k: v for k, v in leakage.items() if not isinstance(v, (list, dict))}
    summary["command"] = metrics.get("command")
    summary["source"] = source
    return {k: v for k, v in summary.items() if v is not None}


def read_metrics(run_dir: str | Path, checkpoint: str = "best") -> dict[str, dict]:
    """Summaries of every ``eval/<name>/metrics.json`` of this checkpoint, by name."""
    eval_dir = Path(run_dir) / "eval"
    suffix = "" if checkpoint == "best" else f"@{_checkpoint_suffix(checkpoint)}"
    found: dict[str, dict] = {}
    for path in sorted(eval_dir.glob("*/metrics.json")):
        name = path.parent.name
        if (suffix and not name.endswith(suffix)) or (not suffix and "@" in name):
            continue
        metrics = _read_json(path)
        if metrics is not None:
            found[name] = summarize_metrics(metrics, str(path))
    return found


def read_training(run_dir: str | Path, checkpoint: str = "best") -> dict[str, Any]:
    """Training facts for the card: the reproducing command, resolved config, data hash
    and the run's summary (best epoch, best validation metrics)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
    data = _read_json(run_dir / "data.json") or {}
    info = {
        "run": str(run_dir),
        "checkpoint": checkpoint,
        # config.yaml is the fully resolved config, so this command reproduces the run
        "command": shlex.join(["melascan", "train", "--config", str(config_path), "--out", str(run_dir)])
        if config is not None
        else None,
        "config": config,
        "data_manifest": data.get("manifest"),
        "data_manifest_sha256": data.get("manifest_sha256"),
        "class_counts": data.get("class_counts"),
        "summary": _read_json(run_dir / "summary.json"),
        "data_sources": _data_sources(data.get("manifest")),
    }
    return {k: v for k, v in info.items() if v is not None}


def _data_sources(manifest: str | None) -> dict | None:
    """Sources, licences, counts and excluded files from the manifest's ``summary.json``."""
    summary = _read_json(Path(manifest).with_name("summary.json")) if manifest else None
    if not summary:
        return None
    keep = ("sources", "licences", "excluded", "counts", "settings")
    return {k: summary[k] for k in keep if k in summary} or None
