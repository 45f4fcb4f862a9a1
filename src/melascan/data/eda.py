"""``melascan eda``: statistics and figures of a prepared split.

Writes into the output folder:

* ``eda.json``: class counts per split, resolutions, per-channel RGB mean/std
  (``rgb_mean``/``rgb_std``: train split, 0-1 scale, which training reads), the same
  per split and per class;
* ``rgb_histograms.json``: per-class, per-channel 256-bin pixel counts of the train split;
* ``class_counts.png``, ``resolutions.png``, ``rgb_histograms.png``,
  ``samples_benign.png``, ``samples_malignant.png``;
* ``index.html``: one page showing all of the above.

Mean and std are exact: integer sums of every pixel of every image at its stored
resolution (no crop or resize), divided by 255; std is the population std over
all those pixels.
"""

from __future__ import annotations

import html
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from melascan.data.manifest import LABELS, SPLITS, Manifest, read_manifest
from melascan.errors import DataError
from melascan.imageio import load_rgb

CHANNELS = ("r", "g", "b")
STATS_SCOPE = (
    "all pixels of every train image at its stored resolution (no crop or resize), "
    "value/255, population std"
)


@dataclass
class EdaConfig:
    manifest: Path
    out: Path
    seed: int = 42  # which images the sample grids show
    workers: int = 2
    progress: bool = True
    grid_side: int = 4  # sample grids are grid_side x grid_side


@dataclass
class PixelStats:
    """Running per-channel pixel sums of ``uint8`` RGB images (exact, integer)."""

    n_pixels: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))
    squares: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))
    histogram: np.ndarray = field(default_factory=lambda: np.zeros((3, 256), dtype=np.int64))

    @classmethod
    def of_image(cls, rgb: np.ndarray) -> "PixelStats":
        """Stats of one ``HxWx3`` ``uint8`` image."""
        pixels = rgb.reshape(-1, 3)
        hist = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)]).astype(np.int64)
        values = np.arange(256, dtype=np.int64)
        # sums from the histogram: exact and cheaper than squaring every pixel
        return cls(len(pixels), hist @ values, hist @ (values * values), hist)

    def add(self, other: "PixelStats") -> None:
        self.n_pixels += other.n_pixels
        self.sums += other.sums
        self.squares += other.squares
        self.histogram += other.histogram

    def mean(self) -> list[float] | None:
        """Per-channel mean, 0-1 scale (``None`` without pixels)."""
        if self.n_pixels == 0:
            return None
        return [float(s / self.n_pixels / 255.0) for s in self.sums]

    def std(self) -> list[float] | None:
        """Per-channel population standard deviation, 0-1 scale (``None`` without pixels)."""
        if self.n_pixels == 0:
            return None
        n = self.n_pixels
        var = [(int(q) * n - int(s) * int(s)) / (n * n) for s, q in zip(self.sums, self.squares)]
        return [float(np.sqrt(max(v, 0.0)) / 255.0) for v in var]


def has_dark_corners(rgb: np.ndarray, corner_frac: float = 0.06, max_level: int = 40) -> bool:
    """True when all four corner patches are near-black (a dermatoscope's round vignette).

    A patch is ``corner_frac`` of the shorter side; it is dark when the mean of its
    per-pixel brightest channel is below ``max_level`` (0-255).
    """
    brightest = rgb.max(axis=2)
    k = max(1, int(round(corner_frac * min(brightest.shape))))
    corners = (brightest[:k, :k], brightest[:k, -k:], brightest[-k:, :k], brightest[-k:, -k:])
    return all(float(c.mean()) < max_level for c in corners)


@dataclass
class GroupStats:
    """What EDA measures over a group of images (one split and class)."""

    pixels: PixelStats = field(default_factory=PixelStats)
    images: int = 0
    dark_corners: int = 0  # images with a black vignette in all four corners


def _measure_image(path: str) -> tuple[PixelStats, bool]:
    """Worker: decode one image and measure it (``ImageError`` names the file)."""
    rgb = load_rgb(path)
    return PixelStats.of_image(rgb), has_dark_corners(rgb)


def measure_pixels(manifest: Manifest, workers: int = 2, progress: bool = True) -> dict[tuple[str, str], GroupStats]:
    """``(split, label) -> GroupStats`` over every image of the manifest."""
    records = manifest.records
    missing = [r.path for r in records if not (manifest.source_root / r.path).is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} images listed in {manifest.path} are missing under {manifest.source_root}, "
            f"e.g. {missing[0]} (was the dataset moved?)"
        )
    paths = [str(manifest.source_root / r.path) for r in records]
    stats = {(s, l): GroupStats() for s in SPLITS for l in LABELS}

    def add(record, measured: tuple[PixelStats, bool]) -> None:
        group = stats[(record.split, record.label)]
        group.pixels.add(measured[0])
        group.images += 1
        group.dark_corners += int(measured[1])
        bar.update()

    bar = tqdm(total=len(paths), desc="reading pixels", unit="img", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for record, measured in zip(records, pool.map(_measure_image, paths, chunksize=32)):
                add(record, measured)
    else:
        for record, path in zip(records, paths):
            add(record, _measure_image(path))
    bar.close()
    return stats


def _merged(stats: dict[tuple[str, str], GroupStats], splits=SPLITS, labels=LABELS) -> PixelStats:
    total = PixelStats()
    for s in splits:
        for l in labels:
            total.add(stats[(s, l)].pixels)
    return total


def summarize(manifest: Manifest, stats: dict[tuple[str, str], GroupStats]) -> dict:
    """The content of ``eda.json`` (figures are added by ``run_eda_report``)."""
    train = _merged(stats, splits=("train",))
    if train.n_pixels == 0:
        raise DataError(f"{manifest.path}: the train split is empty, cannot measure mean/std")
    counts = {s: {l: sum(r.split == s and r.label == l for r in manifest.records) for l in LABELS} for s in SPLITS}
    for s in SPLITS:
        counts[s]["total"] = sum(counts[s].values())
    resolutions: dict[tuple[int, int], int] = {}
    for r in manifest.records:
        resolutions[(r.width, r.height)] = resolutions.get((r.width, r.height), 0) + 1
    return {
        "manifest": str(Path(os.path.abspath(manifest.path))),
        "manifest_sha256": manifest.sha256(),
        "source_root": str(manifest.source_root),
        "rgb_mean": train.mean(),
        "rgb_std": train.std(),
        "stats_scope": STATS_SCOPE,
        "train_pixels": train.n_pixels,
        "counts": counts,
        "resolutions": [
            {"width": w, "height": h, "count": n}
            for (w, h), n in sorted(resolutions.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "per_split": {
            s: {"rgb_mean": m.mean(), "rgb_std": m.std(), "images": counts[s]["total"]}
            for s in SPLITS
            for m in [_merged(stats, splits=(s,))]
        },
        "per_class_train": {
            l: {"rgb_mean": stats[("train", l)].pixels.mean(), "rgb_std": stats[("train", l)].pixels.std()}
            for l in LABELS
        },
        "dark_corner_fraction": {
            s: {l: stats[(s, l)].dark_corners / stats[(s, l)].images if stats[(s, l)].images else None for l in LABELS}
            for s in SPLITS
        },
        "dark_corner_note": "share of images whose four corners are near-black (a round dermatoscope "
        "vignette, see has_dark_corners); a class difference here is a shortcut a model can learn",
    }


def histograms(stats: dict[tuple[str, str], GroupStats], split: str = "train") -> dict:
    """``{label: {"r"|"g"|"b": 256 pixel counts}}`` of one split."""
    return {l: {c: stats[(split, l)].pixels.histogram[i].tolist() for i, c in enumerate(CHANNELS)} for l in LABELS}


# ----------------------------------------------------------------------------- figures
# matplotlib's object API (Figure + savefig) needs no pyplot and no GUI backend.

def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def plot_class_counts(counts: dict, path: Path) -> None:
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(SPLITS))
    for k, (label, color) in enumerate(zip(LABELS, ("#4c9be8", "#d9534f"))):
        values = [counts[s][label] for s in SPLITS]
        bars = ax.bar(x + (k - 0.5) * 0.38, values, width=0.38, label=label, color=color)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(x, SPLITS)
    ax.set_ylabel("images")
    ax.set_title("Images per split and class")
    ax.legend()
    fig.savefig(path)


def plot_resolutions(resolutions: list[dict], path: Path) -> None:
    fig = _figure(5, 4)
    ax = fig.add_subplot()
    w = [r["width"] for r in resolutions]
    h = [r["height"] for r in resolutions]
    n = np.array([r["count"] for r in resolutions], dtype=float)
    ax.scatter(w, h, s=30 + 300 * n / n.max(), alpha=0.6, color="#5a6f8a")
    for r in resolutions[:8]:
        ax.annotate(f"{r['width']}x{r['height']}: {r['count']}", (r["width"], r["height"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title(f"Image resolutions ({len(resolutions)} distinct)")
    fig.savefig(path)


def plot_histograms(histograms: dict, path: Path) -> None:
    fig = _figure(10, 3.2)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, channel, color in zip(axes, CHANNELS, ("red", "green", "blue")):
        for label, style in zip(LABELS, ("-", "--")):
            counts = np.asarray(histograms[label][channel], dtype=float)
            ax.plot(np.arange(256), counts / max(counts.sum(), 1), style, color=color, label=label)
        ax.set_title(f"{channel.upper()} channel (train)")
        ax.set_xlabel("pixel value")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("fraction of pixels")
    fig.savefig(path)


def plot_sample_grid(paths: list[Path], title: str, path: Path, side: int) -> None:
    fig = _figure(2 * side, 2 * side + 0.3)
    fig.suptitle(title)
    axes = fig.subplots(side, side, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image in zip(axes.ravel(), paths):
        ax.imshow(load_rgb(image))
        ax.set_title(image.name, fontsize=7)
    fig.savefig(path)


def sample_paths(manifest: Manifest, label: str, n: int, seed: int) -> list[Path]:
    """``n`` seeded-random train images of ``label`` (sorted pool, so deterministic)."""
    pool = sorted(r.path for r in manifest.subset("train") if r.label == label)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False).tolist()) if pool else []
    return [manifest.source_root / pool[i] for i in chosen]


# ----------------------------------------------------------------------------- report

def _fmt(values: list[float] | None) -> str:
    if values is None:
        return "-"
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def write_index_html(summary: dict, path: Path) -> None:
    """A small static page with the numbers and every figure."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{s}</td><td>{c['benign']}</td><td>{c['malignant']}</td><td>{c['total']}</td>"
        f"<td>{_fmt(summary['per_split'][s]['rgb_mean'])}</td><td>{_fmt(summary['per_split'][s]['rgb_std'])}</td>"
        f"<td>{_pct(summary['dark_corner_fraction'][s]['benign'])}</td>"
        f"<td>{_pct(summary['dark_corner_fraction'][s]['malignant'])}</td></tr>"
        for s, c in summary["counts"].items()
    )
    figures = "".join(
        f'<figure><img src="{e(f)}" alt="{e(name)}"><figcaption>{e(name)}</figcaption></figure>'
        for name, f in summary["figures"].items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MelaScan EDA</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
img{{max-width:100%;border:1px solid #eee}}figure{{margin:1.5em 0}}code{{background:#f4f4f4}}</style></head>
<body><h1>MelaScan exploratory data analysis</h1>
<p>Manifest: <code>{e(summary['manifest'])}</code> (sha256 <code>{e(summary['manifest_sha256'][:16])}</code>)<br>
Images under <code>{e(summary['source_root'])}</code></p>
<h2>Normalisation statistics (train)</h2>
<p><b>rgb_mean</b> = {_fmt(summary['rgb_mean'])}, <b>rgb_std</b> = {_fmt(summary['rgb_std'])}<br>
<small>{e(summary['stats_scope'])}; {summary['train_pixels']:,} pixels.</small></p>
<h2>Splits</h2>
<table><tr><th>split</th><th>benign</th><th>malignant</th><th>total</th><th>RGB mean</th><th>RGB std</th>
<th>dark corners, benign</th><th>dark corners, malignant</th></tr>
{rows}</table>
<p><small>Dark corners: {e(summary['dark_corner_note'])}.</small></p>
<h2>Figures</h2>{figures}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def run_eda_report(cfg: EdaConfig) -> dict:
    """Measure, plot and write everything; returns the ``eda.json`` content."""
    manifest = read_manifest(cfg.manifest)
    if not manifest.records:
        raise DataError(f"{manifest.path} lists no images")
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    stats = measure_pixels(manifest, workers=cfg.workers, progress=cfg.progress)
    summary = summarize(manifest, stats)
    figures = {
        "class counts per split": "class_counts.png",
        "resolutions": "resolutions.png",
        "RGB histograms (train)": "rgb_histograms.png",
        **{f"sample {label} images (train)": f"samples_{label}.png" for label in LABELS},
    }
    plot_class_counts(summary["counts"], out / "class_counts.png")
    plot_resolutions(summary["resolutions"], out / "resolutions.png")
    train_hist = histograms(stats, "train")
    (out / "rgb_histograms.json").write_text(json.dumps(train_hist) + "\n", encoding="utf-8")
    plot_histograms(train_hist, out / "rgb_histograms.png")
    n = cfg.grid_side**2
    for label in LABELS:
        plot_sample_grid(sample_paths(manifest, label, n, cfg.seed), f"{label} (train, seed {cfg.seed})",
                         out / f"samples_{label}.png", cfg.grid_side)
    summary["figures"] = figures
    summary["histograms_file"] = "rgb_histograms.json"
    (out / "eda.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_index_html(summary, out / "index.html")
    return summary
