"""Studies: the seed's comparison grids, each a loop over RunConfigs, scored on the test split.

``run_study(base, "augment", out)`` trains one run per variant into ``out/<variant>/``
(an ordinary run folder), scores each finished run on the **test** and val splits of
its manifest and writes the table as ``out/results.csv`` and ``out/results.md``.
Re-running the same command skips finished variants, resumes interrupted ones and
reuses the cached scores (``<run>/study_metrics.json``), so a study can be stopped
and continued at any time.

Grids (each variant = overrides of the base config):

- ``augment`` (the seed's tables 5-6): the 14 recipes of table 4 (``baseline``,
  F1-F5, C1-C8) without class-weighted sampling (``C4``) and with it (``C4_ws``);
- ``models`` (table 10): the seed's six families (``resnet50``, ``efficientnet_b0``,
  ``densenet121``, ``convnext_tiny``, ``vgg16_bn``, ``inception_v3``) and
  ``efficientnet_lite0`` (always with its offline ImageNet weights) as the reference row. Offline ImageNet weights exist only
  for EfficientNet-Lite, so with ``pretrained=offline`` the six train from scratch
  (``pretrained=none``, a column of the table); ``--set pretrained=timm`` gives them
  timm's ImageNet weights where the hub can be reached;
- ``strategies`` (table 12): dropout head (``baseline`` = the base config's
  ``drop_rate`` 0.3 vs ``no_dropout``), label smoothing, TTA (the ``baseline`` run
  scored with test-time augmentation, no extra training), focal loss
  alpha 0.25/0.5/1/2 (gamma 2) and alpha 0.35 gamma 2.5, warm-up 5/10/20 epochs,
  plus ``ws``, ``ws_focal`` and ``shades_of_gray``.

Scores: P(melanoma) = softmax(logits)[:, 1] from ``runs.predict_logits`` on the
images of the split (the run's ``limit``/``seed`` subset, as in training), a case
called malignant when P >= 0.5 (the seed's rule; no calibration), metrics from
``melascan.evaluation.metrics``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from melascan.errors import DataError
from melascan.runfolder import RunFolder
from melascan.serialization import json_safe
from melascan.training.config import RunConfig, config_from_dict
from melascan.training.models import SEED_MODELS
from melascan.training.recipes import SEED_RECIPES
from melascan.training.study_tables import REFERENCE, pretrained_label, write_tables
from melascan.training.weights import OFFLINE_MODELS

log = logging.getLogger("melascan.training")

#: Threshold on softmax P(melanoma) used for the threshold metrics (the seed's rule).
THRESHOLD = 0.5
N_BOOTSTRAP = 1000  # resamples for the test and out-of-source CIs
#: Smallest input some seed models accept (inception_v3's stem fails below 75 px).
MIN_IMAGE_SIZE = {"inception_v3": 75}
#: Config keys that do not change what a run learns: a finished run with other values is reused.
OPERATIONAL_KEYS = ("threads", "num_workers", "device", "amp", "cache_dir", "checkpoint_every", "tta",
                    "mean", "std")


@dataclass(frozen=True)
class Variant:
    """One row of a study: config overrides, a short description, and how it is scored."""

    overrides: dict = field(default_factory=dict)
    note: str = ""
    tta: bool = False  # score with test-time augmentation (runs.predict_logits(tta=True))
    run_of: str | None = None  # score this other variant's run instead of training one


def _augment_grid() -> dict[str, Variant]:
    plain = {r: Variant({"recipe": r, "weighted_sampling": False}, f"recipe {r}") for r in SEED_RECIPES}
    ws = {f"{r}_ws": Variant({"recipe": r, "weighted_sampling": True}, f"recipe {r} + WS") for r in SEED_RECIPES}
    return {**plain, **ws}


def _models_grid() -> dict[str, Variant]:
    grid = {m: Variant({"model": m}, m) for m in SEED_MODELS}
    grid["efficientnet_lite0"] = Variant({"model": "efficientnet_lite0", "pretrained": "offline"},
                                         "reference: offline ImageNet weights")
    for n in (1, 2):  # the other families with ImageNet weights that ship offline
        grid[f"efficientnet_lite{n}"] = Variant({"model": f"efficientnet_lite{n}", "pretrained": "offline"},
                                                "offline ImageNet weights")
    return grid


def _focal(alpha: float, gamma: float = 2.0) -> Variant:
    return Variant({"loss": "focal", "focal_alpha": alpha, "focal_gamma": gamma}, f"focal loss alpha {alpha}, gamma {gamma}")


STUDY_GRIDS: dict[str, dict[str, Variant]] = {
    "augment": _augment_grid(),
    "models": _models_grid(),
    "strategies": {
        "baseline": Variant({}, "base config (CE, dropout head)"),
        "no_dropout": Variant({"drop_rate": 0.0}, "no dropout before the head (drop_rate 0)"),
        "label_smoothing": Variant({"loss": "label_smoothing", "smoothing": 0.1}, "label smoothing 0.1"),
        "tta": Variant({}, "baseline run + TTA (8 flips/rotations), no retraining", tta=True, run_of="baseline"),
        "focal_a0.25": _focal(0.25),
        "focal_a0.5": _focal(0.5),
        "focal_a1": _focal(1.0),
        "focal_a2": _focal(2.0),
        "focal_a0.35_g2.5": _focal(0.35, 2.5),
        "warmup_5": Variant({"warmup_epochs": 5.0}, "linear warm-up 5 epochs"),
        "warmup_10": Variant({"warmup_epochs": 10.0}, "linear warm-up 10 epochs"),
        "warmup_20": Variant({"warmup_epochs": 20.0}, "linear warm-up 20 epochs"),
        "ws": Variant({"weighted_sampling": True}, "class-weighted sampling (WS)"),
        "ws_focal": Variant({"weighted_sampling": True, "loss": "focal", "focal_alpha": 1.0, "focal_gamma": 2.0},
                            "WS + focal loss alpha 1, gamma 2"),
        "shades_of_gray": Variant({"color_constancy": "shades_of_gray"}, "Shades of Gray colour constancy"),
    },
}

METRICS = ("accuracy", "recall", "specificity", "precision", "f1", "roc_auc")


# ---- configs -------------------------------------------------------------------
def study_configs(base: RunConfig, grid: str, only: list[str] | None = None) -> dict[str, RunConfig]:
    """``variant name -> RunConfig`` of ``grid`` over ``base`` (optionally only some variants).

    Raises ``DataError`` for an unknown grid/variant, or an image size a model cannot take.
    """
    if grid not in STUDY_GRIDS:
        raise DataError(f"unknown study grid {grid!r}; choose from {', '.join(STUDY_GRIDS)}")
    variants = STUDY_GRIDS[grid]
    unknown = sorted(set(only or []) - set(variants))
    if unknown:
        raise DataError(f"unknown variant(s) {unknown} for grid {grid}; choose from {', '.join(variants)}")
    configs = {}
    for name in variants:
        if only and name not in only:
            continue
        cfg = variant_config(base, grid, name)
        if cfg.image_size < MIN_IMAGE_SIZE.get(cfg.model, 0):
            raise DataError(f"{grid}/{name}: {cfg.model} needs image_size >= {MIN_IMAGE_SIZE[cfg.model]} "
                            f"(got {cfg.image_size}); use --image-size or --only")
        configs[name] = cfg
    return configs


def variant_config(base: RunConfig, grid: str, name: str) -> RunConfig:
    """``base`` with the overrides of ``grid``'s variant ``name`` (offline weights -> none where missing)."""
    variant = STUDY_GRIDS[grid][name]
    cfg = config_from_dict(variant.overrides, source=f"study {grid}/{name}", base=base)
    if cfg.pretrained == "offline" and cfg.model not in OFFLINE_MODELS:
        cfg = dataclasses.replace(cfg, pretrained="none")
    return dataclasses.replace(cfg, tta=variant.tta).validate()


def config_differences(saved: RunConfig, wanted: RunConfig) -> list[str]:
    """Keys (other than ``OPERATIONAL_KEYS``) whose values differ, as ``key: saved -> wanted``."""
    a, b = saved.to_dict(), wanted.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in OPERATIONAL_KEYS and a[k] != b[k]]


# ---- scoring -------------------------------------------------------------------
def score_logits(labels, logits, n_bootstrap: int = 0) -> dict:
    """Accuracy, recall, specificity, precision, F1 at P >= 0.5 and ROC-AUC of ``(N, 2)`` logits;
    with ``n_bootstrap``, 95 % bootstrap CIs of F1 and ROC-AUC too."""
    from melascan.evaluation import calibration as C
    from melascan.evaluation import metrics as M

    y = np.asarray(labels).astype(int)
    prob = C.probability(logits, 1.0)
    at = M.threshold_metrics(y, prob, THRESHOLD, n_bootstrap=0)
    out = {
        "n": int(y.size), "n_malignant": int(y.sum()),
        "accuracy": at["accuracy"], "recall": at["sensitivity"], "specificity": at["specificity"],
        "precision": at["precision"], "f1": at["f1"], "roc_auc": M.roc_auc(y, prob),
        "confusion": at["confusion"],
    }
    if n_bootstrap and M.has_both_classes(y):
        out["f1_ci"] = list(M.bootstrap_ci(lambda yy, pp: M.f1(yy, (pp >= THRESHOLD).astype(int)), y, prob,
                                           n_resamples=n_bootstrap))
        out["roc_auc_ci"] = list(M.bootstrap_ci(M.roc_auc, y, prob, n_resamples=n_bootstrap))
    return out


def machine_description(device) -> str:
    """``"NVIDIA H100 ..."`` or ``"CPU: <model name>, N cores"`` plus the torch version."""
    import torch

    from melascan.training.data import available_cpus

    if device.type == "cuda":
        what = f"GPU: {torch.cuda.get_device_name(device)}"
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        what = f"CPU: {name}, {available_cpus()} cores, no GPU"
    return f"{what}; torch {torch.__version__}"


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def evaluate_study_run(run_dir: str | Path, *, tta: bool = False, device: str = "auto",
                       external: dict[str, Path] | None = None) -> dict:
    """Score the run's best checkpoint on its test and val splits and on the ``external`` labelled
    CSVs (name -> CSV, e.g. PH2 and a fixed set of HAM10000 lesions: images from other sources
    that no study run trains on); cached in the run folder.

    The cache ``study_metrics.json`` (``study_metrics_tta.json`` with TTA) is reused while
    ``checkpoints/best.pt`` and the external sets are unchanged.
    """
    from melascan.training.data import select_records
    from melascan.training.distributed import torch_device
    from melascan.training.runs import load_run, predict_logits

    run_dir = Path(run_dir)
    run = RunFolder(run_dir)
    cache = run_dir / ("study_metrics_tta.json" if tta else "study_metrics.json")
    external = {name: str(Path(path).resolve()) for name, path in (external or {}).items()}
    key = {"checkpoint": _stat_key(run.checkpoint("best")), "tta": tta, "threshold": THRESHOLD,
           "external": external, "bootstrap": N_BOOTSTRAP, "probabilities": True}
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached
    model, cfg = load_run(run_dir)
    where = torch_device(device)
    model.to(where)
    manifest = run.manifest(cfg)
    result = {"key": key, "run": str(run_dir), "tta": tta, "threshold": THRESHOLD,
              "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
              "machine": machine_description(where), "evaluated": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.time()
    for split in ("test", "val"):
        records = select_records(manifest, split, cfg.limit, cfg.seed)
        paths = [str(manifest.source_root / r.path) for r in records]
        labels = np.array([r.label_id for r in records])
        logits = predict_logits(model, cfg, paths, tta=tta)
        result[split] = score_logits(labels, logits, n_bootstrap=N_BOOTSTRAP if split == "test" else 0)
        if split == "test":  # for the paired comparisons between variants
            result[split].update(_per_image(labels, logits))
        log.info("  %s%s: %d images, acc %.4f F1 %.4f AUC %.4f", split, " (TTA)" if tta else "", len(labels),
                 result[split]["accuracy"], result[split]["f1"], result[split]["roc_auc"])
    if external:
        from melascan.data.labelled import read_labelled_csv

        result["external"] = {}
        for name, csv_path in external.items():
            images, _ = read_labelled_csv(csv_path)
            labels = np.array([1 if i.label == "malignant" else 0 for i in images])
            logits = predict_logits(model, cfg, [str(i.path) for i in images], tta=tta)
            scores = score_logits(labels, logits, n_bootstrap=N_BOOTSTRAP)
            result["external"][name] = {**scores, "benign_fp": 1.0 - scores["specificity"], "csv": csv_path,
                                        **_per_image(labels, logits)}
            log.info("  %s: %d images, AUC %.4f, benign called malignant %.3f", name, len(labels),
                     scores["roc_auc"], 1.0 - scores["specificity"])
    result["seconds"] = round(time.time() - t0, 1)
    cache.write_text(json.dumps(json_safe(result), indent=2) + "\n")
    return json.loads(cache.read_text())


def _per_image(labels, logits) -> dict:
    """Labels and P(melanoma) per image (6 decimals), kept for the paired comparisons."""
    from melascan.evaluation import calibration as C

    return {"labels": [int(v) for v in labels],
            "probabilities": [round(float(p), 6) for p in C.probability(logits, 1.0)]}


def paired_columns(scores: dict, reference: dict) -> dict:
    """DeLong p of the ROC-AUC difference on test and on each external set, and McNemar's p
    of the decisions at ``THRESHOLD`` on test, against the reference variant's scores."""
    from melascan.evaluation.paired import delong_test, mcnemar_test

    out = {}
    sets = [("test", scores["test"], reference["test"])] + [
        (f"ext_{name}", s, reference.get("external", {}).get(name))
        for name, s in (scores.get("external") or {}).items()]
    for prefix, mine, theirs in sets:
        if not theirs or "probabilities" not in mine or "probabilities" not in theirs \
                or mine["labels"] != theirs["labels"]:
            continue
        y, a, b = np.asarray(mine["labels"]), np.asarray(mine["probabilities"]), np.asarray(theirs["probabilities"])
        out[f"{prefix}_roc_auc_vs_ref_p"] = delong_test(y, a, b)["p_value"]
        if prefix == "test":
            out["test_mcnemar_vs_ref_p"] = mcnemar_test(y, a >= THRESHOLD, b >= THRESHOLD)["p_value"]
    return out


# ---- the loop ------------------------------------------------------------------
def _saved_config(run_dir: Path) -> RunConfig | None:
    run = RunFolder(run_dir)
    return run.read_config() if run.config_path.is_file() else None


def _train_variant(name: str, cfg: RunConfig, run_dir: Path, label: str) -> dict:
    """Train (or resume, or skip when finished) one variant's run; return its summary."""
    from melascan.training.engine import train

    saved = _saved_config(run_dir)
    if saved is not None:
        diff = config_differences(saved, cfg)
        if diff:
            raise DataError(f"{run_dir} was trained with another config ({'; '.join(diff)}); "
                            "use another --out, or delete that run folder")
    summary = RunFolder(run_dir).read_summary()
    if summary and summary.get("finished"):
        log.info("study %s %s: already finished, skipped", label, name)
        return summary
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    log.info("study %s %s%s", label, name, " (resuming)" if resume else "")
    return train(cfg, run_dir, resume=resume)


def run_study(base: RunConfig, grid: str, out_dir: str | Path, only: list[str] | None = None,
              command: str | None = None, external: dict[str, Path] | None = None) -> list[dict]:
    """Train and score every variant of ``grid`` (or ``only`` some); write and return the table.

    ``command``: the ``melascan study`` command line without ``--only``, for results.md.
    The table also keeps the other variants of the grid already finished in ``out_dir``
    with the same settings, so ``--only`` runs add rows instead of replacing the table.
    """
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    wanted = study_configs(base, grid, only)
    every = {name: variant_config(base, grid, name) for name in STUDY_GRIDS[grid]}
    variants = STUDY_GRIDS[grid]
    if base.threads:
        torch.set_num_threads(base.threads)
    # a variant scored on another's run (TTA) needs that run trained first
    to_train = []
    for name in wanted:
        source = variants[name].run_of or name
        if source not in to_train:
            to_train.append(source)
    rows: list[dict] = []
    for i, name in enumerate(to_train, start=1):
        _train_variant(name, every[name], out_dir / name, f"{grid} [{i}/{len(to_train)}]")
        if main_rank:  # score it and rewrite the tables: they grow after every run
            rows = _collect_rows(grid, out_dir, every, set(wanted), external)
            write_tables(out_dir, grid, rows, base, command, list(STUDY_GRIDS[grid]))
    return rows


def _collect_rows(grid: str, out_dir: Path, configs: dict[str, RunConfig], wanted: set[str],
                  external: dict[str, Path] | None = None) -> list[dict]:
    """Score every variant whose run is finished (wanted ones, and others with the same settings),
    each compared with the grid's ``REFERENCE`` variant when that one is finished too."""
    rows, scored = [], {}
    for name, cfg in configs.items():
        variant = STUDY_GRIDS[grid][name]
        run_dir = out_dir / (variant.run_of or name)
        summary = RunFolder(run_dir).read_summary()
        if not (summary and summary.get("finished")):
            continue
        saved = _saved_config(run_dir)
        if name not in wanted and (saved is None or config_differences(saved, cfg)):
            log.warning("%s: trained with other settings than this study, left out of the table", run_dir)
            continue
        scores = evaluate_study_run(run_dir, tta=variant.tta, device=cfg.device, external=external)
        rows.append(result_row(grid, name, cfg, summary, scores, run_dir))
        scored[name] = scores
    reference = scored.get(REFERENCE[grid])
    if reference is not None:
        for row in rows:
            if row["variant"] != REFERENCE[grid]:
                row.update(paired_columns(scored[row["variant"]], reference))
    return rows


def result_row(grid: str, name: str, cfg: RunConfig, summary: dict, scores: dict, run_dir: Path) -> dict:
    """One results.csv row (unformatted values)."""
    variant = STUDY_GRIDS[grid][name]
    row = {
        "grid": grid, "variant": name, "note": variant.note, "model": cfg.model,
        "pretrained": pretrained_label(cfg), "params_m": scores.get("params_m"), "recipe": cfg.recipe,
        "weighted_sampling": cfg.weighted_sampling, "loss": cfg.loss, "drop_rate": cfg.drop_rate,
        "warmup_epochs": cfg.warmup_epochs, "color_constancy": cfg.color_constancy or "none", "tta": variant.tta,
        "image_size": cfg.image_size, "epochs": cfg.epochs, "limit": cfg.limit,
        "overrides": json.dumps(variant.overrides), "best_epoch": summary["best_epoch"],
        "stopped_epoch": summary["stopped_epoch"], "early_stopped": summary["early_stopped"],
        "val_loss": summary["best"].get("val_loss"), "train_seconds": summary.get("seconds"),
        "run_dir": str(run_dir), "machine": scores.get("machine"),
    }
    for split in ("test", "val"):
        s = scores[split]
        row[f"{split}_n"], row[f"{split}_n_malignant"] = s["n"], s["n_malignant"]
        for m in METRICS:
            row[f"{split}_{m}"] = s[m]
    for m in ("f1", "roc_auc"):
        row[f"test_{m}_ci_low"], row[f"test_{m}_ci_high"] = (scores["test"].get(f"{m}_ci") or [None, None])
    for name, s in (scores.get("external") or {}).items():
        row[f"ext_{name}_roc_auc"], row[f"ext_{name}_benign_fp"] = s["roc_auc"], s["benign_fp"]
        row[f"ext_{name}_roc_auc_ci_low"], row[f"ext_{name}_roc_auc_ci_high"] = s.get("roc_auc_ci") or [None, None]
    return row
