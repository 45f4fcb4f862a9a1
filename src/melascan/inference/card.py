"""The model card: everything the runtime needs besides the ONNX graph (no torch).

A model folder holds four files, all named by ``model_card.json``::

    model_card.json      machine-readable card (this module reads and writes it)
    model_card.md        the same, for people
    <name>.onnx          one self-contained ONNX file: input -> logits (N,2), features (N,C,h,w)
    <name>_head.npz      the linear head (``weight`` (2,C), ``bias`` (2,)) used for CAM

The runtime trusts nothing it has not checked: ``load_card`` validates the fields and
``verify_files`` compares the sha256 of each file with the card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from melascan.errors import ModelError
from melascan.preprocess import TTA_VIEW_COUNTS
from melascan.serialization import file_sha256

CARD_FILE = "model_card.json"
CARD_MD_FILE = "model_card.md"
SCHEMA_VERSION = 1
CLASS_NAMES = ("benign", "malignant")  # logit index = class id
STATUSES = ("trained", "untrained")

#: Thresholds and temperature used when a run has no calibration.json.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_THRESHOLDS = {"balanced": 0.5, "screening": 0.5}

PLACEHOLDER_NOTE = (
    "PLACEHOLDER MODEL - NOT TRAINED. The weights are random: the probabilities it gives "
    "carry no information about melanoma. It exists only so that the app and the tools can "
    "run before a trained model is exported with `melascan export`."
)


def file_entry(path: str | Path) -> dict[str, Any]:
    """``{"name", "sha256", "bytes"}`` for a file of the model folder."""
    path = Path(path)
    return {"name": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size}


def _require(card: dict, dotted: str) -> Any:
    node: Any = card
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ModelError(f"model card is missing the field {dotted!r}")
        node = node[key]
    return node


def validate_card(card: dict, source: str = "model card") -> dict:
    """Check the fields the runtime relies on; raise ``ModelError`` naming ``source``."""
    try:
        if not isinstance(card, dict):
            raise ModelError("not a JSON object")
        if card.get("schema_version") != SCHEMA_VERSION:
            raise ModelError(f"unsupported schema_version {card.get('schema_version')!r}")
        if _require(card, "status") not in STATUSES:
            raise ModelError(f"status must be one of {STATUSES}")
        size = _require(card, "input.image_size")
        if not isinstance(size, int) or size < 8:
            raise ModelError(f"bad input.image_size {size!r}")
        for key in ("mean", "std"):
            values = _require(card, f"input.{key}")
            if not (isinstance(values, list) and len(values) == 3
                    and all(isinstance(v, (int, float)) for v in values)):
                raise ModelError(f"input.{key} must be 3 numbers")
        if min(card["input"]["std"]) <= 0:
            raise ModelError("input.std must be positive")
        if _require(card, "input.color_constancy") not in (None, "", "none", "shades_of_gray"):
            raise ModelError(f"unknown input.color_constancy {card['input']['color_constancy']!r}")
        views = card["input"].get("test_time_views", 1)
        if views not in TTA_VIEW_COUNTS or isinstance(views, bool):
            raise ModelError(f"input.test_time_views must be one of {TTA_VIEW_COUNTS}, got {views!r}")
        temperature = _require(card, "calibration.temperature")
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ModelError(f"calibration.temperature must be > 0, got {temperature!r}")
        thresholds = _require(card, "calibration.thresholds")
        for key in ("balanced", "screening"):
            t = thresholds.get(key) if isinstance(thresholds, dict) else None
            if not (isinstance(t, (int, float)) and 0.0 <= t <= 1.0):
                raise ModelError(f"calibration.thresholds.{key} must be in [0, 1], got {t!r}")
        for key in ("onnx", "head"):
            _require(card, f"files.{key}.name")
            _require(card, f"files.{key}.sha256")
        if list(_require(card, "class_names")) != list(CLASS_NAMES):
            raise ModelError(f"class_names must be {list(CLASS_NAMES)}")
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    return card


def load_card(model_dir: str | Path) -> dict:
    """Read and validate ``model_dir/model_card.json``."""
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise ModelError(f"model card not found: {path}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON model card ({exc})") from None
    return validate_card(card, str(path))


def test_time_views(card: dict) -> int:
    """How many symmetries of the square the network's logits are averaged over
    (``preprocess.tta_views``; 1 = the image as it is). Temperature and thresholds were fitted
    on logits averaged the same way."""
    return int(card["input"].get("test_time_views", 1))


def decision_thresholds(card: dict) -> dict[str, float]:
    """The thresholds the shipped probability is compared with: the fusion's when the
    model fuses the network with the lesion measurements, else the calibration's."""
    block = card["fusion"] if card.get("fusion") else card["calibration"]
    return {name: float(value) for name, value in block["thresholds"].items()}


def verify_files(card: dict, model_dir: str | Path) -> None:
    """Raise ``ModelError`` if a file named by the card is missing or its sha256 differs."""
    for key in ("onnx", "head"):
        _require(card, f"files.{key}.name")
    for key, entry in card["files"].items():  # onnx and head, and scope when present
        path = Path(model_dir) / entry["name"]
        if not path.is_file():
            raise ModelError(f"model file missing: {path} (named by {CARD_FILE})")
        actual = file_sha256(path)
        if actual != entry["sha256"]:
            raise ModelError(
                f"{path}: sha256 {actual[:12]}... does not match the model card "
                f"({entry['sha256'][:12]}...); the file is corrupt or belongs to another model"
            )


def write_card(card: dict, model_dir: str | Path) -> tuple[Path, Path]:
    """Validate ``card`` and write ``model_card.json`` and ``model_card.md``."""
    model_dir = Path(model_dir)
    validate_card(card)
    json_path = model_dir / CARD_FILE
    json_path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    md_path = model_dir / CARD_MD_FILE
    md_path.write_text(card_markdown(card), encoding="utf-8")
    return json_path, md_path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "—" if value is None else str(value)


#: Columns of the metrics table in model_card.md (keys of runinfo.summarize_metrics).
METRIC_COLUMNS = (
    ("n_images", "images"),
    ("roc_auc", "ROC-AUC"),
    ("roc_auc_ci", "95% CI"),
    ("pr_auc", "PR-AUC"),
    ("accuracy_0.5", "acc (0.5)"),
    ("f1_0.5", "F1 (0.5)"),
    ("sensitivity_0.5", "sens (0.5)"),
    ("accuracy_balanced", "acc (bal.)"),
    ("f1_balanced", "F1 (bal.)"),
    ("sensitivity_balanced", "sens (bal.)"),
    ("specificity_balanced", "spec (bal.)"),
    ("sensitivity_screening", "sens (scr.)"),
    ("specificity_screening", "spec (scr.)"),
    ("ece", "ECE"),
)


def _metrics_table(metrics: dict) -> list[str]:
    """One row per evaluated set (and one without leaked images when measured)."""
    lines = ["| set | " + " | ".join(title for _, title in METRIC_COLUMNS) + " |"]
    lines.append("|---" * (len(METRIC_COLUMNS) + 1) + "|")
    for name, values in metrics.items():
        rows = [(name, "")]
        if "n_images_without_leaked" in values:
            rows.append((f"{name} without images also in training", "_without_leaked"))
        for label, suffix in rows:
            cells = [_fmt(values.get(key + suffix)) for key, _ in METRIC_COLUMNS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _views_text(views: int) -> str:
    if views == 1:
        return "none"
    return f"logits averaged over {views} symmetries of the square (preprocess.tta_views)"


def card_markdown(card: dict) -> str:
    """A readable rendering of the card (``model_card.md``)."""
    inp, cal, exp = card["input"], card["calibration"], card.get("export", {})
    alone = " (network alone; the shipped probability is fused, see below)" if card.get("fusion") else ""
    lines = [f"# Model card: {card.get('name', 'model')}", ""]
    warnings = list(card.get("warnings", []))
    if card["status"] != "trained" and PLACEHOLDER_NOTE not in warnings:
        warnings.insert(0, PLACEHOLDER_NOTE)
    for warning in warnings:
        lines += [f"> **WARNING:** {warning}", ""]
    lines += [
        "Research software, not a medical device: a probability from this model is not a diagnosis.",
        "",
        "| field | value |",
        "|---|---|",
        f"| status | {card['status']} |",
        f"| architecture | {card.get('architecture')} |",
        f"| precision | {card.get('precision', 'fp32')} |",
        f"| classes (logit order) | {', '.join(card['class_names'])} |",
        f"| input | {inp['image_size']} x {inp['image_size']} RGB, centre square crop |",
        f"| mean / std (0-1 scale) | {_fmt(inp['mean'])} / {_fmt(inp['std'])} |",
        f"| colour constancy | {inp['color_constancy'] or 'none'} |",
        f"| test-time augmentation | {_views_text(test_time_views(card))} |",
        f"| temperature T | {_fmt(cal['temperature'])} |",
        f"| threshold balanced{alone} | {_fmt(cal['thresholds']['balanced'])} |",
        f"| threshold screening{alone} | {_fmt(cal['thresholds']['screening'])} |",
        f"| calibration source | {cal.get('source') or 'none (defaults)'} |",
        f"| ONNX file | {card['files']['onnx']['name']} ({card['files']['onnx'].get('bytes', 0) / 1e6:.1f} MB) |",
        f"| ONNX sha256 | `{card['files']['onnx']['sha256']}` |",
        f"| exporter / opset | {exp.get('exporter')} / {exp.get('opset')} |",
        f"| ONNX vs PyTorch max abs diff (logits) | {_fmt(exp.get('max_abs_diff_logits'))} |",
        f"| ONNX vs PyTorch max abs diff (features) | {_fmt(exp.get('max_abs_diff_features'))} |",
        f"| created | {card.get('created')} |",
        "",
        "P(melanoma) = softmax(logits / T)[1]"
        + ("" if test_time_views(card) == 1 else ", the logits averaged over the test-time views")
        + "; a label is `malignant` when P >= the threshold.",
        "",
    ]
    int8 = exp.get("int8")
    if int8:
        lines += ["## int8 quantization", "", f"{int8.get('method')}; {int8.get('calibration_images')} "
                  f"calibration images ({int8.get('calibration_source') or 'unspecified'}).", ""]  # fmt: skip
        comparison = int8.get("comparison") or {}
        lines += [f"- {k}: {_fmt(v)}" for k, v in comparison.items()] + [""]
    training = card.get("training") or {}
    if training:
        lines += ["## Training", ""]
        if training.get("command"):
            lines += ["```", training["command"], "```", ""]
        for key in ("run", "checkpoint", "data_manifest", "data_manifest_sha256"):
            if training.get(key):
                lines.append(f"- {key}: `{training[key]}`")
        lines.append("")
        best = (training.get("summary") or {}).get("best")
        if isinstance(best, dict):
            epoch = training["summary"].get("best_epoch")
            values = ", ".join(f"{k} {_fmt(v)}" for k, v in best.items() if isinstance(v, (int, float)))
            lines += [f"Best validation epoch {epoch} (during training): {values}", ""]
        if training.get("config"):
            config = yaml.safe_dump(training["config"], sort_keys=False, default_flow_style=None).rstrip()
            lines += ["Resolved config (`config.yaml` of the run):", "", "```yaml", config, "```", ""]
    sources = training.get("data_sources") or {}
    if sources.get("sources") or sources.get("licences"):
        lines += ["## Training data sources", ""]
        for name, licence in (sources.get("licences") or {}).items():
            lines.append(f"- {name}: {(sources.get('sources') or {}).get(name, '')} (licence: {licence})")
        excluded = sources.get("excluded")
        if excluded:
            lines.append(f"- excluded (never trained or selected on): {excluded.get('listed')} listed files, "
                         f"{excluded.get('removed_from_train_val')} removed from train/val plus "
                         f"{excluded.get('near_duplicates_removed')} near duplicates")
        lines.append("")
    scope = card.get("scope")
    if scope:
        lines += ["## Out-of-scope detector", "", f"{scope.get('method')}. Threshold {_fmt(scope.get('threshold'))} "
                  f"({scope.get('threshold_from')}); fitted on {scope.get('fitted_on')}. An image above the "
                  "threshold, or whose colours cannot be skin (the lesion analysis's `not_dermoscopic` check), "
                  "is reported as not a dermoscopic image of a skin lesion and gets no probability.", ""]
        if scope.get("familiar_below") is not None:
            lines += [f"Familiar pictures: score <= {_fmt(scope['familiar_below'])} ({scope.get('familiar_from')}). "
                      "An in-scope picture above it gets its probability, but no reassuring level.", ""]
        left_out = scope.get("left_out_source_rejection") or {}
        if left_out.get("rates"):
            lines += ["Rejected validation images of a source the detector was not fitted on (fitted and "
                      "thresholded on the other sources): "
                      + ", ".join(f"{k} {100 * v:.1f} %" for k, v in left_out["rates"].items())
                      + "; what a new dermatoscope may lose."
                      + ("" if not left_out.get("unfamiliar_rates") else " Rejected or unfamiliar: "
                         + ", ".join(f"{k} {100 * v:.1f} %" for k, v in left_out["unfamiliar_rates"].items()) + "."),
                      ""]
    fusion = card.get("fusion")
    if fusion:
        cv = fusion.get("validation") or {}
        lines += ["## Fusion with the lesion measurements", "", f"{fusion.get('method')}.",
                  f"Inputs: {', '.join(fusion.get('features', []))}.",
                  f"Thresholds on the fused probability: balanced {_fmt(fusion['thresholds']['balanced'])}, "
                  f"screening {_fmt(fusion['thresholds']['screening'])} ({fusion.get('thresholds_from')}).", ""]
        if cv:
            loso = f"; fitted on the other sources: {cv['fusion_loso']}" if cv.get("fusion_loso") else ""
            lines += [f"Validation ROC-AUC by source ({cv.get('method')}): network {cv.get('network')}, "
                      f"fusion {cv.get('fusion_cv')}{loso}.", ""]
    metrics = card.get("metrics") or {}
    lines += ["## Metrics", ""]
    if metrics:
        lines += ["Copied from the run's evaluation outputs (`eval/*/metrics.json`).", ""]
        lines += _metrics_table(metrics) + [""]
    else:
        lines += ["No evaluation outputs were found for this model: no metrics are reported.", ""]
    external = card.get("external_validation")
    if external:
        shipped = "fusion, scope and thresholds" if fusion else "scope and thresholds"
        lines += [f"## External validation (what ships: {shipped} as in this card)", "",
                  "| model | set | images | ROC-AUC [95 % CI] | 0.5: sens / spec / F1 | balanced: sens / spec / F1 | "
                  "screening: sens / spec / F1 | out of scope |", "|---" * 8 + "|", *external.get("table", []), "",
                  f"`{external.get('command')}`", ""]
    if card.get("notes"):
        lines += ["## Notes", "", card["notes"], ""]
    return "\n".join(lines)
