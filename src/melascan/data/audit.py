"""``melascan audit``: how well do trivial cues predict the label, per source?

A data set whose benign and malignant images come from different collections lets a
model score well by recognising the collection. This audit measures that directly:
for each cue set below a small model is cross-validated (5 folds, stratified) and its
ROC-AUC for *malignant vs benign* is reported on the whole manifest split and within
each source, plus how well the same cues tell the *sources* apart.

Cue sets (pure functions of the image file; arrays in, numbers out):

* ``size``: width, height, aspect ratio, file bytes per pixel;
* ``colour``: mean and standard deviation of R, G, B;
* ``frame``: share of near-black pixels in the outer ring and in the corners (a
  dermatoscope's black circular vignette);
* ``jpeg``: estimated JPEG quality (from the luminance quantisation table), 0 if not JPEG;
* ``thumb32``: the image squashed to 32x32 pixels (3,072 numbers, PCA to 32 dims) - a tiny
  model that sees no lesion detail;
* ``framing``: how the lesion sits in the picture, from the lesion analysis's mask
  (``lesion_framing``): its share of the picture, its box's width and height relative to the
  picture's, how far its centre is off the picture's centre, whether one was found. It mixes a
  real sign (melanomas are larger) with how a collection zoomed and cropped.

AUC 0.5 = the cue carries no label; within one source a cue near 0.5 is what we want.
Models: gradient boosting for the tabular cues, logistic regression for the thumbnails.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from melascan.data.manifest import read_manifest
from melascan.errors import ImageError
from melascan.lesion.segmentation import segment_lesion

log = logging.getLogger(__name__)

CUE_SETS = ("size", "colour", "frame", "jpeg", "thumb32", "framing")
THUMB_PX = 32
DARK_LEVEL = 40  # gray level below which a pixel counts as frame-black


def jpeg_quality(image: Image.Image) -> float:
    """Estimated JPEG quality 1-100 from the luminance quantisation table (libjpeg scaling); 0 if not JPEG."""
    tables = getattr(image, "quantization", None)
    if not tables:
        return 0.0
    # libjpeg's standard luminance table, quality 50
    base = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
                     56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104,
                     113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], float)
    table = np.asarray(tables[min(tables)], float)
    if table.size != 64:
        return 0.0
    scale = 100.0 * float(np.mean(table)) / float(np.mean(base))  # libjpeg: table = base * scale / 100
    quality = 100 - scale / 2 if scale <= 100 else 5000 / scale
    return float(np.clip(quality, 1, 100))


def frame_fractions(rgb: np.ndarray) -> tuple[float, float]:
    """Shares of near-black pixels in the outer ring (10 % of the side) and in the four corners."""
    gray = rgb.mean(axis=2)
    h, w = gray.shape
    band = max(1, int(0.1 * min(h, w)))
    ring = np.ones_like(gray, bool)
    ring[band:-band, band:-band] = False
    c = max(1, int(0.15 * min(h, w)))
    corners = np.concatenate([gray[:c, :c].ravel(), gray[:c, -c:].ravel(), gray[-c:, :c].ravel(), gray[-c:, -c:].ravel()])
    return float(np.mean(gray[ring] < DARK_LEVEL)), float(np.mean(corners < DARK_LEVEL))


def lesion_framing(mask: np.ndarray) -> list[float]:
    """How a lesion mask (HxW bool) sits in its picture: ``[area_fraction, box_width_fraction,
    box_height_fraction, centre_offset_x_fraction, centre_offset_y_fraction, found]``; offsets are
    the box centre's distance from the picture's centre over the picture's width and height.
    All zeros (``found`` 0) for an empty mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return [0.0] * 6
    h, w = mask.shape[:2]
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return [rows.size / (h * w), (right - left) / w, (bottom - top) / h,
            abs((left + right) / 2 - w / 2) / w, abs((top + bottom) / 2 - h / 2) / h, 1.0]


def image_cues(path: str) -> dict:
    """Every cue of one image file (see module doc)."""
    with Image.open(path) as image:
        quality = jpeg_quality(image)
        rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[:2]
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    thumb = np.asarray(Image.fromarray(rgb).resize((THUMB_PX, THUMB_PX), Image.Resampling.BOX), np.float32) / 255
    ring, corners = frame_fractions(rgb)
    try:
        framing = lesion_framing(segment_lesion(rgb).mask)
    except ImageError:  # too small or too elongated for the lesion analysis: no lesion found
        framing = lesion_framing(np.zeros(rgb.shape[:2], bool))
    return {
        "size": [w, h, w / h, Path(path).stat().st_size / (w * h)],
        "colour": [*pixels.mean(axis=0), *pixels.std(axis=0)],
        "frame": [ring, corners],
        "jpeg": [quality],
        "thumb32": thumb.ravel().tolist(),
        "framing": framing,
    }


def cross_validated_auc(x: np.ndarray, y: np.ndarray, kind: str, seed: int = 0,
                        groups: np.ndarray | None = None) -> float:
    """5-fold stratified cross-validated ROC-AUC of a small model on features ``x`` (NaN with one class).

    ``kind``: ``thumb32`` (PCA-32 + logistic regression), ``embedding`` (a network's pooled
    features: standardised logistic regression), anything else a tabular cue set (gradient
    boosting). With ``groups`` (e.g. lesion ids) no group straddles two folds."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y)) < 2 or np.bincount(y).min() < 5:
        return float("nan")
    if kind == "thumb32":
        dims = min(32, int(0.8 * len(y)) - 1, x.shape[1])
        model = make_pipeline(StandardScaler(), PCA(dims, random_state=seed), LogisticRegression(max_iter=2000))
    elif kind == "embedding":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    else:
        model = HistGradientBoostingClassifier(max_iter=100, min_samples_leaf=max(3, min(20, len(y) // 20)),
                                               random_state=seed)
    folds = (StratifiedKFold(5, shuffle=True, random_state=seed) if groups is None
             else StratifiedGroupKFold(5, shuffle=True, random_state=seed))
    prob = cross_val_predict(model, x, y, cv=folds, groups=groups, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, prob))


@dataclass
class AuditResult:
    rows: list[dict]  # {"cues", "target", "subset", "n", "auc"}
    summary: dict


def audit_manifest(manifest_path: str | Path, *, split: str | None = "train", workers: int = 2,
                   seed: int = 0) -> AuditResult:
    """Cue AUCs for the label (whole split and per source) and for the source (when several)."""
    manifest = read_manifest(manifest_path)
    records = [r for r in manifest.records if split is None or r.split == split]
    paths = [str(manifest.source_root / r.path) for r in records]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        cues = list(pool.map(image_cues, paths, chunksize=64))
    y = np.array([r.label_id for r in records])
    sources = np.array([r.source or "all" for r in records])
    rows = []
    for kind in CUE_SETS:
        x = np.array([c[kind] for c in cues], dtype=np.float64)
        rows.append({"cues": kind, "target": "label", "subset": "all", "n": len(y),
                     "auc": cross_validated_auc(x, y, kind, seed)})
        names = sorted(set(sources))
        if len(names) > 1:
            for name in names:
                m = sources == name
                rows.append({"cues": kind, "target": "label", "subset": name, "n": int(m.sum()),
                             "auc": cross_validated_auc(x[m], y[m], kind, seed)})
            if len(names) == 2:
                rows.append({"cues": kind, "target": f"source ({names[1]} vs {names[0]})", "subset": "all",
                             "n": len(y), "auc": cross_validated_auc(x, (sources == names[1]).astype(int), kind, seed)})
    frame = np.array([c["frame"][1] for c in cues])
    summary = {
        "manifest": str(Path(manifest_path).resolve()), "split": split or "all", "images": len(y),
        "malignant": int(y.sum()), "sources": {s: int((sources == s).sum()) for s in sorted(set(sources))},
        "black_corners_share": {f"{s}/{lab}": round(float(np.mean(frame[(sources == s) & (y == i)] > 0.5)), 4)
                                for s in sorted(set(sources)) for i, lab in enumerate(("benign", "malignant"))
                                if ((sources == s) & (y == i)).any()},
        "method": "5-fold stratified CV; gradient boosting (tabular cues), PCA-32 + logistic regression (thumbnails)",
    }
    return AuditResult(rows, summary)


def markdown_table(results: dict[str, AuditResult]) -> str:
    """One table: rows = cue sets, columns = (audit name, subset/target) ROC-AUC."""
    columns = [(name, r["subset"], r["target"]) for name, res in results.items() for r in res.rows
               if r["cues"] == CUE_SETS[0]]
    head = "| cues | " + " | ".join(f"{n}: {t if t != 'label' else 'label'} ({s})" for n, s, t in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for kind in CUE_SETS:
        cells = []
        for name, subset, target in columns:
            row = next(r for r in results[name].rows if (r["cues"], r["subset"], r["target"]) == (kind, subset, target))
            cells.append("—" if np.isnan(row["auc"]) else f"{row['auc']:.3f}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_audit(results: dict[str, AuditResult], path: Path) -> Path:
    """Grouped bars: each cue set's AUC per (audit, subset, target)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [(name, r["subset"], r["target"]) for name, res in results.items() for r in res.rows
               if r["cues"] == CUE_SETS[0]]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / len(columns)
    for j, (name, subset, target) in enumerate(columns):
        values = [next(r["auc"] for r in results[name].rows if (r["cues"], r["subset"], r["target"]) ==
                       (kind, subset, target)) for kind in CUE_SETS]
        label = f"{name}: {target} ({subset})"
        ax.bar(np.arange(len(CUE_SETS)) + j * width, values, width, label=label)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(CUE_SETS)) + 0.4 - width / 2, CUE_SETS)
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("cross-validated ROC-AUC")
    ax.set_title("What trivial cues predict (0.5 = nothing)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_audit(manifests: dict[str, Path], out: Path, *, split: str | None = "train", workers: int = 2) -> dict:
    """Audit each named manifest; write ``audit.json``, ``audit.md`` and ``audit.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    results = {name: audit_manifest(path, split=split, workers=workers) for name, path in manifests.items()}
    data = {name: {"summary": r.summary, "rows": r.rows} for name, r in results.items()}
    (out / "audit.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out / "audit.md").write_text(markdown_table(results) + "\n", encoding="utf-8")
    plot_audit(results, out / "audit.png")
    return data
