"""Read what a training run folder says about a model, for its card (no torch).

Only files that exist are read and only numbers found in them are copied: a card
never shows a metric that was not measured. The folder's layout is
``melascan.runfolder``'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from melascan.errors import DataError
from melascan.runfolder import RunFolder, read_json

log = logging.getLogger(__name__)


def read_calibration(run_dir: str | Path, checkpoint: str = "best", *, tta: bool = False) -> dict | None:
    """The card's calibration block: ``temperature``, ``thresholds``, ``source`` and how it
    was fitted (``fitted_on``, ``command``); ``None`` when the checkpoint was not evaluated.
    With ``tta`` the block fitted on test-time-augmented logits (``melascan evaluate --tta``),
    with its ``views``; a ``DataError`` when there is none."""
    cal = RunFolder(run_dir).read_calibration(checkpoint)
    if cal is None and not tta:
        return None
    keep = ("temperature", "thresholds", "source", "fitted_on", "command")
    if not tta:
        return {k: cal.get(k) for k in keep}
    block = (cal or {}).get("tta")
    if not isinstance(block, dict) or "temperature" not in block or "thresholds" not in block:
        raise DataError(f"{run_dir}: no test-time-augmented calibration for checkpoint {checkpoint!r}; "
                        f"run `melascan evaluate {run_dir} --tta VIEWS` first")
    return {**{k: cal.get(k) for k in keep}, "temperature": float(block["temperature"]),
            "thresholds": {k: float(block["thresholds"][k]) for k in ("balanced", "screening")},
            "views": int(block.get("views", 8))}  # files written before views were recorded used 8


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _scores(block: Any) -> dict[str, Any]:
    """Headline numbers of one ``score()`` block of metrics.json."""
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


def summarize_metrics(metrics: dict, source: str | None = None, variant: str = "plain") -> dict[str, Any]:
    """The card's summary of one ``eval/<name>/metrics.json``: image counts, ROC-AUC,
    sensitivity/specificity at both thresholds, and the same without leaked images
    (the overlap with training) when the evaluation measured them; of the ``variant``
    ``"plain"`` or ``"tta"`` (test-time augmentation)."""
    summary: dict[str, Any] = {
        "n_images": metrics.get("n_images"),
        "n_malignant": metrics.get("n_malignant"),
        **_scores(metrics.get(variant)),
    }
    clean = metrics.get("without_leaked")
    if isinstance(clean, dict):
        summary["n_images_without_leaked"] = clean.get("n_images")
        summary.update({f"{k}_without_leaked": v for k, v in _scores(clean.get(variant)).items()})
    leakage = metrics.get("leakage")
    if isinstance(leakage, dict):
        summary["leakage"] = {k: v for k, v in leakage.items() if not isinstance(v, (list, dict))}
    summary["command"] = metrics.get("command")
    summary["source"] = source
    return {k: v for k, v in summary.items() if v is not None}


def read_metrics(run_dir: str | Path, checkpoint: str = "best", views: int = 1) -> dict[str, dict]:
    """Summaries of every ``eval/<name>/metrics.json`` of this checkpoint, by name: the plain
    scores, or with ``views`` > 1 the test-time-augmented ones of the evaluations made with
    that many views (the others do not describe such a model and are left out)."""
    found: dict[str, dict] = {}
    for name, folder in RunFolder(run_dir).evaluations(checkpoint).items():
        metrics = read_json(folder / "metrics.json")
        if metrics is None:
            continue
        if views == 1:
            found[name] = summarize_metrics(metrics, str(folder / "metrics.json"))
        elif metrics.get("with_tta") and metrics.get("tta_views", 8) == views:  # 8: before views were recorded
            found[name] = summarize_metrics(metrics, str(folder / "metrics.json"), variant="tta")
    return found


def read_training(run_dir: str | Path, checkpoint: str = "best") -> dict[str, Any]:
    """Training facts for the card: the reproducing command, resolved config, data hash
    and the run's summary (best epoch, best validation metrics)."""
    run = RunFolder(run_dir)
    config = run.read_config().to_dict() if run.config_path.is_file() else None
    data = run.read_data()
    info = {
        "run": str(run.path),
        "checkpoint": checkpoint,
        "command": run.command() if config is not None else None,
        "config": config,
        "data_manifest": data.get("manifest"),
        "data_manifest_sha256": data.get("manifest_sha256"),
        "class_counts": data.get("class_counts"),
        "summary": run.read_summary(),
        "data_sources": _data_sources(data.get("manifest")),
    }
    return {k: v for k, v in info.items() if v is not None}


def _data_sources(manifest: str | None) -> dict | None:
    """Sources, licences, counts and excluded files from the manifest's ``summary.json``."""
    summary = read_json(Path(manifest).with_name("summary.json")) if manifest else None
    if not summary:
        return None
    keep = ("sources", "licences", "excluded", "counts", "settings")
    return {k: summary[k] for k in keep if k in summary} or None
