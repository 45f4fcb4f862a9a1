"""One report page per run: ``runs/NAME/report.md`` and ``runs/NAME/report.html``.

The page is rebuilt from the files in the run folder (config.yaml, data.json,
summary.json, history.csv, calibration.json and every ``eval/<name>/metrics.json``),
so it always shows every evaluation done so far. Both formats come from the same
list of blocks; metrics are printed with 4 decimals.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from pathlib import Path

import yaml

from melascan.errors import DataError
from melascan.evaluation.calibration import OPERATING_POINTS
from melascan.runfolder import RunFolder, read_json

#: Config fields shown in the summary table (the full config follows it).
KEY_CONFIG_FIELDS = (
    "model", "pretrained", "image_size", "color_constancy", "recipe", "weighted_sampling", "loss",
    "lr", "batch_size", "epochs", "patience", "seed", "limit", "manifest",
)


# --- formatting -------------------------------------------------------------------------------


def fmt(value, digits: int = 4) -> str:
    """A number with ``digits`` decimals; ints as ints; missing/NaN as 'n/a'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_ci(value, ci) -> str:
    """``0.8354 [0.8176, 0.8510]``."""
    if not ci or any(c is None for c in ci):
        return fmt(value)
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def _read_json(path: Path) -> dict | None:
    """The report shows what it can: an unreadable file is left out, not an error."""
    try:
        return read_json(path)
    except DataError:
        return None


# --- blocks -> Markdown / HTML ------------------------------------------------------------------
# A block is ("h", level, text) | ("p", text) | ("table", header, rows)
# | ("imgs", [(src, alt), ...]) (shown side by side) | ("code", text)


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            out.append(b[1])
        elif kind == "table":
            header, rows = b[1], b[2]
            cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            out.append("| " + " | ".join(cell(h) for h in header) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)
        elif kind == "imgs":
            out.append(" ".join(f"![{alt}]({src})" for src, alt in b[1]))
        elif kind == "code":
            out.append("```\n" + b[1].rstrip("\n") + "\n```")
        out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}img{max-width:100%;margin:.3em .5em .3em 0}
code{background:#f6f6f6}
"""


def _inline_html(text: str) -> str:
    """Escape, then render Markdown ``code`` spans."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(blocks: list[tuple], title: str) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f"<h{b[1]}>{_inline_html(b[2])}</h{b[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline_html(str(h))}</th>" for h in b[1]) + "</tr></thead><tbody>")
            for row in b[2]:
                out.append("<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
        elif kind == "imgs":
            for src, alt in b[1]:
                src, alt = html.escape(src, quote=True), html.escape(alt, quote=True)
                out.append(f'<a href="{src}"><img src="{src}" alt="{alt}" loading="lazy"></a>')
        elif kind == "code":
            out.append(f"<pre>{html.escape(b[1])}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- sections -------------------------------------------------------------------------------------


def _config_blocks(run: RunFolder) -> list[tuple]:
    path = run.config_path
    if not path.is_file():
        return [("h", 2, "Configuration"), ("p", "No config.yaml in the run folder.")]
    text = path.read_text(encoding="utf-8")
    cfg = yaml.safe_load(text) or {}
    rows = [[k, _value(cfg[k])] for k in KEY_CONFIG_FIELDS if k in cfg]
    return [("h", 2, "Configuration"), ("table", ["field", "value"], rows), ("p", "Full `config.yaml`:"), ("code", text)]


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, v))
    return rows


def _value(v) -> str:
    """A config/summary value: floats without trailing zeros, lists comma-separated."""
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return fmt(v)


def _data_blocks(run: RunFolder) -> list[tuple]:
    data = _read_json(run.data_path)
    blocks: list[tuple] = [("h", 2, "Data")]
    if data is None:
        return blocks + [("p", "No data.json in the run folder.")]
    return blocks + [("table", ["item", "value"], [[k, _value(v)] for k, v in _flatten(data)])]


def _training_blocks(run: RunFolder) -> list[tuple]:
    from melascan.evaluation import figures as F

    blocks: list[tuple] = [("h", 2, "Training")]
    summary = _read_json(run.summary_path) or {}
    if summary:
        blocks.append(("table", ["item", "value"], [[k, _value(v)] for k, v in _flatten(summary)]))
    if run.history_path.is_file():
        hist = F.history_arrays(run.read_history())
        if hist:
            F.plot_training_curves(
                hist,
                run.path / "figures" / "training_curves.png",
                best_epoch=summary.get("best_epoch"),
                stopped_epoch=summary.get("stopped_epoch"),
            )
            blocks.append(("imgs", [("figures/training_curves.png", "training curves")]))
    else:
        blocks.append(("p", "No history.csv in the run folder."))
    return blocks


def _calibration_blocks(cal: dict, heading: str) -> list[tuple]:
    v = cal.get("validation", {})
    rules = cal.get("rules", {})
    rows = [
        ["temperature T", fmt(cal["temperature"]), rules.get("temperature", "")],
        *[[f"threshold {k}", fmt(t), rules.get(k, "")] for k, t in cal["thresholds"].items()],
    ]
    blocks: list[tuple] = [("h", 3, heading), ("table", ["parameter", "value", "how it was chosen"], rows)]
    if v:
        blocks.append((
            "table",
            ["validation", "before scaling", "after scaling"],
            [[m.upper() if m != "brier" else "Brier", fmt(v.get(f"{m}_before")), fmt(v.get(f"{m}_after"))]
             for m in ("nll", "ece", "brier")],
        ))
        at = v.get("at_threshold", {})
        if at:
            blocks.append((
                "table",
                ["validation at threshold", "sensitivity", "specificity", "precision", "F1"],
                [[k, fmt(m["sensitivity"]), fmt(m["specificity"]), fmt(m["precision"]), fmt(m["f1"])]
                 for k, m in at.items()],
            ))
    return blocks


def _ranking_table(scores: dict[str, dict]) -> tuple:
    """Threshold-free metrics, one column per variant (plain, TTA)."""
    rows_def = [
        ("ROC-AUC [95% CI]", lambda r, c: fmt_ci(r["roc_auc"], r.get("roc_auc_ci"))),
        ("PR-AUC (average precision)", lambda r, c: fmt(r["pr_auc"])),
        ("Brier (calibrated)", lambda r, c: fmt(r["brier"])),
        ("ECE (calibrated)", lambda r, c: fmt(r["ece"])),
        ("ECE before scaling", lambda r, c: fmt(c["ece_before"])),
        ("NLL before / after scaling", lambda r, c: f"{fmt(c['nll_before'])} / {fmt(c['nll_after'])}"),
        ("sensitivity @ 90% specificity", lambda r, c: fmt(r["sens_at_spec90"])),
        ("sensitivity @ 95% specificity", lambda r, c: fmt(r["sens_at_spec95"])),
        ("specificity @ 95% sensitivity", lambda r, c: fmt(r["spec_at_sens95"])),
    ]
    header = ["metric", *scores]
    rows = [[label, *(f(s["ranking"], s["calibration"]) for s in scores.values())] for label, f in rows_def]
    return ("table", header, rows)


def _threshold_table(scores: dict[str, dict]) -> tuple:
    """Decision metrics: one column per (variant, operating point)."""
    cols = [(v, op) for v in scores for op in OPERATING_POINTS if op in scores[v]["thresholds"]]
    header = ["metric"] + [(op if len(scores) == 1 else f"{v} {op}") for v, op in cols]

    def cell(v, op, key):
        m = scores[v]["thresholds"][op]
        if key == "threshold":
            return fmt(m["threshold"])
        if key in ("sensitivity", "specificity"):
            return fmt_ci(m[key], m.get(f"{key}_ci"))
        if key == "confusion":
            c = m["confusion"]
            return f"{c['tp']}/{c['fp']}/{c['fn']}/{c['tn']}"
        return fmt(m[key])

    labels = {
        "threshold": "threshold",
        "accuracy": "accuracy",
        "sensitivity": "sensitivity [95% CI]",
        "specificity": "specificity [95% CI]",
        "precision": "precision (PPV)",
        "f1": "F1",
        "confusion": "TP/FP/FN/TN",
    }
    rows = [[label, *(cell(v, op, key) for v, op in cols)] for key, label in labels.items()]
    return ("table", header, rows)


def _eval_blocks(name: str, m: dict) -> list[tuple]:
    src = m.get("source", {})
    where = f"folder `{src.get('folder')}`" if src.get("kind") == "folder" else f"split `{src.get('split')}` of `{src.get('manifest')}`"
    variants = {k: m[k] for k in ("plain", "tta") if k in m}
    blocks: list[tuple] = [
        ("h", 2, f"Evaluation: {name}"),
        ("p", f"{where}; checkpoint `{m.get('checkpoint', 'best')}`; {m['n_images']} images "
              f"({m['n_malignant']} malignant, {m['n_benign']} benign); {len(m.get('skipped', []))} unreadable skipped. "
              f"Calibration (T, thresholds) fitted on val ({m.get('calibrated_on', {}).get('n', '?')} images); "
              f"probabilities below are calibrated. CIs: {m['settings']['n_bootstrap']} stratified bootstrap "
              f"resamples, seed {m['settings']['seed']}; ECE with {m['settings']['ece_bins']} equal-width bins."),
        ("p", f"Reproduce: `{m.get('command', '')}`"),
    ]
    leak = m.get("leakage")
    if leak:
        blocks.append(("p", f"Leakage guard ({leak['method']}, against the {leak['against']}): "
                            f"{leak['n_leaked']} of {leak['checked']} images already seen by the run "
                            f"({leak['n_in_train']} in train, {leak['n_in_val']} in val; {leak['n_exact']} exact, "
                            f"{leak['n_near']} near; {leak['n_leaked_malignant']} malignant)."))
    blocks += [("h", 3, "Threshold-free metrics"), _ranking_table(variants)]
    blocks += [("h", 3, "At each operating point"), _threshold_table(variants)]
    clean = m.get("without_leaked")
    if clean:
        cv = {k: clean[k] for k in ("plain", "tta") if k in clean}
        blocks += [
            ("h", 3, f"Without the {leak['n_leaked']} leaked images ({clean['n_images']} images)"),
            _ranking_table(cv),
            _threshold_table(cv),
        ]
    for variant, figs in m.get("figures", {}).items():
        blocks.append(("h", 3, "Figures" + (" (TTA)" if variant == "tta" else "")))
        blocks.append(("imgs", [(f"eval/{name}/{f}", f"{name} {Path(f).stem}") for f in figs]))
    return blocks


def _eval_order(eval_dir: Path) -> tuple:
    """Manifest splits first (test, val, train), then folders, by name."""
    order = {"test": 0, "val": 1, "train": 2}
    return (order.get(RunFolder.parse_eval_name(eval_dir.name)[0], 3), eval_dir.name)


def build_blocks(run_dir: str | Path) -> list[tuple]:
    """The report of ``run_dir`` as blocks (see ``to_markdown``)."""
    from melascan import __version__

    run = RunFolder(run_dir)
    run_dir = run.path
    evals = sorted(run.evaluations(checkpoint=None).values(), key=_eval_order)
    blocks: list[tuple] = [
        ("h", 1, f"MelaScan run report: {run_dir.name}"),
        ("p", f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by melascan {__version__}. "
              "Research use only: not a medical device."),
        ("h", 2, "Reproduce"),
        ("code", "\n".join([run.command()]
                           + [(_read_json(e / "metrics.json") or {}).get("command", "") for e in evals])),
    ]
    blocks += _config_blocks(run) + _data_blocks(run) + _training_blocks(run)
    cal = _read_json(run.calibration_path())
    if cal:
        blocks += [("h", 2, "Calibration (fitted on the validation split)")]
        blocks += _calibration_blocks(cal, "Plain predictions")
        if "tta" in cal:
            blocks += _calibration_blocks(cal["tta"], "With test-time augmentation")
    for e in evals:
        m = _read_json(e / "metrics.json")
        if m:
            blocks += _eval_blocks(e.name, m)
    if not evals:
        blocks.append(("p", "No evaluation yet: run `melascan evaluate` on this run."))
    return blocks


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``; returns their paths."""
    run = RunFolder(run_dir)
    blocks = build_blocks(run.path)
    md, page = run.report_paths
    md.write_text(to_markdown(blocks), encoding="utf-8")
    page.write_text(to_html(blocks, f"MelaScan run report: {run.path.name}"), encoding="utf-8")
    return md, page
