"""The study's tables: ``results.csv`` (one row per variant) and ``results.md``, rebuilt
from the finished variants' rows (torch-free; ``melascan.training.study`` runs the grids)."""

from __future__ import annotations

import csv
import math
import shlex
import time
from pathlib import Path

from melascan.training.config import RunConfig

GRID_TITLES = {
    "augment": "Augmentation recipes without and with class-weighted sampling (seed tables 5-6)",
    "models": "Model families (seed table 10)",
    "strategies": "Training strategies (seed table 12)",
}

#: results.csv columns, one row per variant (metrics at 4 decimals).
RESULT_COLUMNS = (
    "grid", "variant", "note", "model", "pretrained", "params_m", "recipe", "weighted_sampling", "loss",
    "drop_rate", "warmup_epochs", "color_constancy", "tta", "image_size", "epochs", "limit", "overrides",
    "best_epoch", "stopped_epoch", "early_stopped",
    "test_n", "test_n_malignant", "test_accuracy", "test_recall", "test_specificity", "test_precision",
    "test_f1", "test_roc_auc", "test_f1_ci_low", "test_f1_ci_high", "test_roc_auc_ci_low", "test_roc_auc_ci_high",
    "test_roc_auc_vs_ref_p", "test_mcnemar_vs_ref_p",
    "val_n", "val_n_malignant", "val_accuracy", "val_recall", "val_specificity", "val_precision",
    "val_f1", "val_roc_auc", "val_loss", "train_seconds", "run_dir",
)

#: The row every other variant of a grid is compared with (paired, on the same images).
REFERENCE = {"augment": "baseline", "strategies": "baseline", "models": "efficientnet_lite0"}


def pretrained_label(cfg: RunConfig) -> str:
    """How the run's weights were initialised, in words."""
    return {"offline": "ImageNet (offline)", "timm": "ImageNet (timm hub)", "none": "none (from scratch)"}[cfg.pretrained]


# ---- tables --------------------------------------------------------------------
def fmt(value, digits: int = 4) -> str:
    """Numbers to ``digits`` decimals; None/NaN -> ``""``; booleans -> yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _csv_value(key: str, value) -> str:
    if key in ("params_m", "drop_rate", "warmup_epochs"):
        return "" if value is None else f"{value:g}"
    if key == "train_seconds":
        return fmt(value, 1)
    return fmt(value)


def write_results_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        columns = list(RESULT_COLUMNS) + sorted({k for r in rows for k in r if k.startswith("ext_")})  # + out-of-source
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(k, row.get(k)) for k in columns])


def fmt_p(value) -> str:
    """A p-value: 3 decimals, ``<0.001`` below that, ``""`` when missing."""
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


# Markdown columns: (header, row key, formatter)
_EPOCH_COLS = [("best ep.", "best_epoch", str), ("stopped ep.", "stopped_epoch", str),
               ("early stop", "early_stopped", fmt)]
_TEST_COLS = [(f"test {h}", f"test_{k}", fmt) for h, k in
              (("acc", "accuracy"), ("recall", "recall"), ("precision", "precision"), ("F1", "f1"), ("AUC", "roc_auc"))]
_VAL_COLS = [(f"val {h}", f"val_{k}", fmt) for h, k in
             (("acc", "accuracy"), ("recall", "recall"), ("precision", "precision"), ("F1", "f1"), ("AUC", "roc_auc"))]
_TIME_COLS = [("train min", "train_seconds", lambda s: "" if s is None else f"{s / 60:.1f}")]
_CI_COLS = [("test F1 [95% CI]", "test_f1", None), ("test AUC [95% CI]", "test_roc_auc", None)]
_P_COLS = [("AUC vs ref. p (DeLong)", "test_roc_auc_vs_ref_p", lambda v: fmt_p(v)),
           ("decisions vs ref. p (McNemar)", "test_mcnemar_vs_ref_p", lambda v: fmt_p(v))]
_GRID_COLS = {
    "augment": [("variant", "variant", str), ("recipe", "recipe", str)],
    "models": [("model", "model", str), ("weights", "pretrained", str),
               ("params (M)", "params_m", lambda v: "" if v is None else f"{v:.1f}")],
    "strategies": [("variant", "variant", str), ("what", "note", str)],
}


def _with_ci(row: dict, key: str) -> str:
    """``0.9123 [0.89-0.93]`` from ``key``, ``key_ci_low`` and ``key_ci_high`` (external: ``key_roc_auc``)."""
    value_key = key if key in row else f"{key}_roc_auc"
    low, high = row.get(f"{value_key}_ci_low"), row.get(f"{value_key}_ci_high")
    text = fmt(row.get(value_key))
    return f"{text} [{fmt(low, 3)}-{fmt(high, 3)}]" if text and low is not None else text


def markdown_table(rows: list[dict], columns) -> str:
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_with_ci(r, k) if f is None else f(r.get(k)) for _, k, f in columns) + " |"
              for r in rows]
    return "\n".join(lines)


def results_markdown(grid: str, rows: list[dict], base: RunConfig, command: str | None,
                     grid_variants: list[str] | None = None) -> str:
    """results.md: where and how it was measured, then the table(s)."""
    externals = sorted({k[4:-8] for r in rows for k in r if k.startswith("ext_") and k.endswith("_roc_auc")})
    ext_cols = [col for name in externals for col in (
        (f"{name} AUC [95% CI]", f"ext_{name}", None), (f"{name} benign FP", f"ext_{name}_benign_fp", fmt),
        (f"{name} AUC vs ref. p", f"ext_{name}_roc_auc_vs_ref_p", lambda v: fmt_p(v)))]
    columns = (_GRID_COLS[grid] + _TEST_COLS + _CI_COLS + _P_COLS + ext_cols + _VAL_COLS + _EPOCH_COLS
               + _TIME_COLS)
    machines = sorted({r["machine"] for r in rows if r.get("machine")})
    test_ns = sorted({(r["test_n"], r["test_n_malignant"]) for r in rows})
    val_ns = sorted({(r["val_n"], r["val_n_malignant"]) for r in rows})
    what = ("" if grid == "augment" else f", recipe {base.recipe}") + (
        "" if grid == "models" else f", model {base.model} (weights: {pretrained_label(base)})")
    limit = f"{base.limit} images per split" if base.limit is not None else "none (whole splits)"
    if command:
        names = [r["variant"] for r in rows]
        if names != list(grid_variants or names):  # a part of the grid: name the variants shown
            command += " --only " + " ".join(shlex.quote(n) for n in names)
    lines = [
        f"# Study `{grid}`: {GRID_TITLES[grid]}",
        "",
        f"- Measured on: {'; '.join(machines) or 'n/a'} (where each run was scored, right after training).",
        f"- Settings: image size {base.image_size} px, epochs at most {base.epochs} (early stopping patience "
        f"{base.patience}), limit {limit}, batch {base.batch_size}, lr {base.lr:g}, "
        f"warm-up epochs {base.warmup_epochs:g}{what}; manifest `{base.manifest}`.",
        "- Scored on the **test** split of the manifest ("
        + ", ".join(f"{n} images, {m} malignant" for n, m in test_ns) + ") and on val ("
        + ", ".join(f"{n} images, {m} malignant" for n, m in val_ns) + ") with the best checkpoint "
        "(lowest val loss); malignant when softmax P(melanoma) >= 0.5 (no calibration); recall = sensitivity.",
        f"- Paired p-values against the reference row `{REFERENCE[grid]}` on the same images: DeLong's test "
        "of the ROC-AUC difference, McNemar's exact test of the decisions at 0.5; not corrected for the "
        "number of rows compared, so read them next to the seed-to-seed spread.",
        f"- Reproduce: `{command}`" if command else "- Reproduce: `melascan study " + grid + "` with the settings above",
        f"- Written {time.strftime('%Y-%m-%d %H:%M')}; all columns, specificity and the confusion counts "
        "are in results.csv and `<variant>/study_metrics.json`.",
        "",
    ]
    if grid == "augment":
        for ws, title in ((False, "Without class-weighted sampling"), (True, "With class-weighted sampling (WS)")):
            part = [r for r in rows if r["weighted_sampling"] is ws]
            if part:
                lines += [f"## {title}", "", markdown_table(part, columns), ""]
    else:
        lines += [markdown_table(rows, columns), ""]
    return "\n".join(lines)


def write_tables(out_dir: Path, grid: str, rows: list[dict], base: RunConfig, command: str | None,
                 grid_variants: list[str] | None = None) -> None:
    """``results.csv``, ``results.md`` and ``results.png`` of the finished ``rows``; ``grid_variants``: the
    grid's variant order (a table showing fewer variants names them in its command)."""
    write_results_csv(out_dir / "results.csv", rows)
    from melascan.evaluation.figures import plot_study

    plot_study(rows, out_dir / "results.png", title=f"Study {grid}: {GRID_TITLES[grid]} (95 % CIs)")
    (out_dir / "results.md").write_text(results_markdown(grid, rows, base, command, grid_variants),
                                        encoding="utf-8")


def study_command(grid: str, *, config: str | None, overrides: list[str], out: str | None) -> str:
    """The ``melascan study`` command line of a study (results.md adds ``--only`` for a partial table)."""
    parts = ["melascan", "study", grid]
    if config:
        parts += ["--config", str(config)]
    if overrides:
        parts += ["--set", *overrides]
    if out:
        parts += ["--out", str(out)]
    return shlex.join(parts)


#: Columns whose spread across seeds the noise table reports (out-of-source ones are added).
SPREAD_COLUMNS = ("test_f1", "test_roc_auc", "val_roc_auc")


def seed_spread(rows_by_seed: dict[int, list[dict]]) -> list[dict]:
    """Per variant present under more than one seed: for each metric the mean, sample standard
    deviation, min and max across seeds. ``rows_by_seed``: ``{seed: results rows}``."""
    by_variant: dict[str, dict[int, dict]] = {}
    for seed, rows in rows_by_seed.items():
        for row in rows:
            by_variant.setdefault(row["variant"], {})[seed] = row
    columns = list(SPREAD_COLUMNS) + sorted({k for rows in rows_by_seed.values() for r in rows for k in r
                                             if k.startswith("ext_") and k.endswith(("_roc_auc", "_benign_fp"))})
    out = []
    for variant, seeds in by_variant.items():
        if len(seeds) < 2:
            continue
        entry: dict = {"variant": variant, "seeds": sorted(seeds)}
        for col in columns:
            values = [float(r[col]) for r in seeds.values() if r.get(col) not in (None, "")]
            if len(values) >= 2:
                entry[col] = {"mean": sum(values) / len(values), "sd": _sample_sd(values),
                              "min": min(values), "max": max(values)}
        out.append(entry)
    return out


def _sample_sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def spread_markdown(spread: list[dict]) -> str:
    """The noise table: one row per variant and metric, ``mean ± sd [min-max]`` over the seeds."""
    lines = ["| variant | seeds | metric | mean | SD | min-max |", "|---|---|---|---|---|---|"]
    for entry in spread:
        for col, s in entry.items():
            if isinstance(s, dict):
                lines.append(f"| {entry['variant']} | {', '.join(map(str, entry['seeds']))} | {col} | "
                             f"{s['mean']:.4f} | {s['sd']:.4f} | {s['min']:.4f}-{s['max']:.4f} |")
    return "\n".join(lines)
