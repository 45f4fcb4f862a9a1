"""Evaluation figures as PNG files (matplotlib's Agg backend: headless, no pyplot state).

Every function draws one figure, writes it to ``out_path`` and returns the path.
Operating points are given as ``{"name": threshold}`` on P(malignant).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless, before anything draws
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

from melascan.evaluation import metrics as M  # noqa: E402

DPI = 110
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _save(fig: Figure, out_path: str | Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_path, dpi=DPI)
    return out_path


def history_arrays(rows: list[dict]) -> dict[str, np.ndarray]:
    """``history.csv`` rows (``RunFolder.read_history``) -> ``{column: float array}`` (empty
    cells become NaN)."""
    if not rows:
        return {}

    def num(v: str) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    return {col: np.array([num(r[col]) for r in rows]) for col in rows[0]}


def plot_training_curves(
    history: dict[str, np.ndarray],
    out_path: str | Path,
    *,
    best_epoch: int | None = None,
    stopped_epoch: int | None = None,
) -> Path:
    """Loss, accuracy and F1 per epoch for train and validation (val AUC with F1),
    with the best (checkpointed) epoch and the early-stopping epoch marked."""
    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 3)
    epoch = history.get("epoch", np.arange(1, len(next(iter(history.values()), [])) + 1))
    panels = (("loss", "Loss"), ("acc", "Accuracy"), ("f1", "F1 (malignant)"))
    for ax, (key, title) in zip(axes, panels):
        for split, style in (("train", "-"), ("val", "--")):
            col = f"{split}_{key}"
            if col in history:
                ax.plot(epoch, history[col], style, marker=".", label=split)
        if key == "f1" and "val_auc" in history:
            ax.plot(epoch, history["val_auc"], ":", marker=".", label="val AUC")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:green", lw=1, label=f"best epoch {best_epoch}")
        if stopped_epoch is not None and stopped_epoch != best_epoch:
            ax.axvline(stopped_epoch, color="tab:red", lw=1, ls=":", label=f"stopped {stopped_epoch}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_path)


def plot_confusion_matrix(y_true, prob, threshold: float, out_path: str | Path, *, title: str = "") -> Path:
    """Confusion matrix (counts) of the decisions ``prob >= threshold``."""
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true).astype(int),
        M.predict_labels(prob, threshold),
        labels=[0, 1],
        display_labels=["benign", "malignant"],
        cmap="Blues",
        colorbar=False,
        values_format="d",
        ax=ax,
    )
    ax.set_title(title or f"threshold {threshold:.3f}")
    return _save(fig, out_path)


def _operating_points(y, prob, operating_points: dict[str, float]) -> list[tuple[str, float, dict]]:
    return [
        (name, thr, M.threshold_metrics(y, prob, thr, n_bootstrap=0)) for name, thr in operating_points.items()
    ]


#: curve -> (sklearn display, (x, y) of an operating point's metrics, axis labels, title, legend place)
_CURVES = {
    "roc": (RocCurveDisplay, lambda m: (1 - m["specificity"], m["sensitivity"]),
            ("1 - specificity", "sensitivity"), "ROC", "lower right"),
    "pr": (PrecisionRecallDisplay, lambda m: (m["sensitivity"], m["precision"]),
           ("recall (sensitivity)", "precision"), "Precision-recall", "lower left"),
}


def _plot_curve(kind: str, y_true, prob, out_path: str | Path, operating_points: dict[str, float] | None) -> Path:
    display, point, (xlabel, ylabel), title, legend = _CURVES[kind]
    y, p = M.check_inputs(y_true, prob)
    fig = Figure(figsize=(4.8, 4.6))
    ax = fig.subplots()
    display.from_predictions(y, p, name="model", ax=ax, plot_chance_level=True)
    for (name, thr, m), marker in zip(_operating_points(y, p, operating_points or {}), _MARKERS):
        ax.plot(*point(m), marker, ms=8, label=f"{name} (t={thr:.3f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend, fontsize=8)
    return _save(fig, out_path)


def plot_roc(y_true, prob, out_path: str | Path, *, operating_points: dict[str, float] | None = None) -> Path:
    """ROC curve with its AUC and the operating points marked."""
    return _plot_curve("roc", y_true, prob, out_path, operating_points)


def plot_pr(y_true, prob, out_path: str | Path, *, operating_points: dict[str, float] | None = None) -> Path:
    """Precision-recall curve with average precision and the operating points marked."""
    return _plot_curve("pr", y_true, prob, out_path, operating_points)


def plot_reliability(
    y_true,
    prob_before,
    prob_after,
    out_path: str | Path,
    *,
    n_bins: int = M.ECE_BINS,
    temperature: float | None = None,
) -> Path:
    """Observed malignant fraction vs mean predicted probability in ``n_bins`` equal-width
    bins, before and after temperature scaling, with ECE in the legend and a histogram
    of the calibrated probabilities below."""
    y = np.asarray(y_true).astype(int)
    fig = Figure(figsize=(5.0, 5.6))
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect")
    after = "after" if temperature is None else f"after (T={temperature:.2f})"
    for p, label, marker in ((prob_before, "before", "s"), (prob_after, after, "o")):
        frac, mean = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
        ece = M.expected_calibration_error(y, p, n_bins)
        ax.plot(mean, frac, marker=marker, label=f"{label}, ECE {ece:.4f}")
    ax.set_ylabel("observed malignant fraction")
    ax.set_title("Reliability")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    hist.hist(np.asarray(prob_after, float), bins=n_bins, range=(0, 1), color="tab:orange")
    hist.set_xlabel("predicted P(malignant)")
    hist.set_ylabel("count")
    return _save(fig, out_path)


def _ci_errors(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``key`` and their asymmetric error bars from ``key_ci_low`` / ``key_ci_high``."""
    value = np.array([r.get(key) if r.get(key) is not None else np.nan for r in rows], dtype=float)
    low = np.array([r.get(f"{key}_ci_low") if r.get(f"{key}_ci_low") is not None else np.nan for r in rows], float)
    high = np.array([r.get(f"{key}_ci_high") if r.get(f"{key}_ci_high") is not None else np.nan for r in rows], float)
    return value, np.nan_to_num(np.vstack([value - low, high - value]), nan=0.0)


def plot_study(rows: list[dict], out_path: str | Path, *, title: str = "") -> Path:
    """One study grid: per variant the test F1 and ROC-AUC and each out-of-source ROC-AUC
    (``ext_<name>_roc_auc``), all with their 95 % CIs (``<key>_ci_low`` / ``_ci_high``)."""
    names = [r["variant"] for r in rows]
    externals = sorted({k[4:-8] for r in rows for k in r if k.startswith("ext_") and k.endswith("_roc_auc")})
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 0.42 * len(rows) + 2), 6.4))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, series in ((top, [("test F1", "test_f1", "o"), ("test ROC-AUC", "test_roc_auc", "s")]),
                       (bottom, [(f"{e} ROC-AUC (out of source)", f"ext_{e}_roc_auc", m)
                                 for e, m in zip(externals, ("D", "^", "v", "P"))])):
        for i, (label, key, marker) in enumerate(series):
            value, err = _ci_errors(rows, key)
            offset = (i - (len(series) - 1) / 2) * 0.18
            ax.errorbar(x + offset, value, yerr=err, fmt=marker, ms=5, capsize=2, label=label)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=8, loc="lower left")
    top.set_ylabel("in distribution (seed test split)")
    bottom.set_ylabel("other sources")
    bottom.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    top.set_title(title or "study", fontsize=10)
    return _save(fig, out_path)
