"""The one place where the web app meets the model and the lesion analysis.

``run_analysis(image_bytes, filename)`` decodes an upload, classifies it with the
embedded ONNX model (``melascan.inference.Classifier``), computes the class
activation map, segments the lesion and measures ABCD/TDS (``melascan.lesion``),
checks image quality, and combines everything into a risk level (``risk_assessment``,
the rule documented below and in docs/web.md).

It returns a dict: every key is JSON-safe except ``"images"``, which maps an image
kind (``original``, ``thumbnail``, ``heatmap``, ``contour``, ...) to ``(mime, bytes)``;
the caller stores those separately (``split_images``).
"""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import datetime, timezone
from typing import Any

import cv2
import numpy as np
from PIL import Image

from melascan.errors import ImageError, ModelError
from melascan.imageio import load_rgb
from melascan.serialization import json_safe

SCHEMA = "melascan.analysis/1"

#: Lesion analysis and CAM run on a copy whose longer side is at most this many pixels.
ANALYSIS_MAX_SIDE_PX = 1024
THUMBNAIL_SIDE_PX = 256
#: Large JPEGs are decoded at a reduced scale, at least this many pixels on the longer side.
DECODE_MIN_SIDE_PX = 2048

LEVELS = ("low", "moderate", "high")
#: The level reported when image-quality problems keep the app from judging a lesion.
UNKNOWN = "unknown"
#: The level (and blocking code) of an image the scope detector rejects: no probability is shown.
OUT_OF_SCOPE = "out_of_scope"
#: Blocking code added when the model card's status is not "trained".
UNTRAINED = "untrained_model"

#: Warnings that are shown but still let the app judge: the segmentation's own flags
#: (the spot runs off the picture, or is small in it). Every other code, i.e. the
#: quality codes of ``melascan.lesion.quality`` (blurry, too_dark, too_bright, no_lesion,
#: not_dermoscopic) and any code this module does not know, blocks reassurance.
NON_BLOCKING_WARNINGS = frozenset({"touches_border", "too_small"})

#: TDS band (``melascan.lesion.tds.BANDS``) -> how many risk steps it suggests (0 = none).
TDS_BAND_STEPS = {"benign": 0, "suspicious": 1, "melanoma": 2, "malignant": 2}


# --- the risk rule (pure) ------------------------------------------------------------------


def model_level(probability: float, screening: float, balanced: float) -> str:
    """Level from the calibrated probability and the model card's two thresholds.

    ``p >= balanced`` -> high; ``screening <= p < balanced`` -> moderate; else low.
    (The screening threshold is the lower, high-sensitivity one.)
    """
    low_t, high_t = sorted((screening, balanced))
    if probability >= high_t:
        return "high"
    if probability >= low_t:
        return "moderate"
    return "low"


def risk_assessment(
    probability: float,
    thresholds: dict[str, float],
    tds_band: str | None,
    warnings: list[str],
    model_status: str = "trained",
    in_scope: bool | None = None,
) -> dict[str, Any]:
    """The risk level shown to the user, with the reasons that produced it.

    The rule:

    0. An image the model's scope detector rejects (``in_scope`` False: not a dermoscopic
       image of a skin lesion) gets no level at all: ``out_of_scope``, and the app shows
       no probability for it, only how to retake the photo.

    1. The model gives a level (``model_level``): the validated part of the app.
    2. The TDS band can raise it, never lower it, and by at most one step:
       a ``suspicious`` band (TDS 4.75-5.45) lifts low to moderate; a ``melanoma`` band
       (TDS > 5.45) lifts low to moderate and moderate to high.
    3. If a blocking quality warning is present (blurry, too dark, no lesion found,
       not a dermoscopic image ...) a *low* result becomes ``unknown`` ("cannot judge"):
       the app never reassures about an image it cannot read. Moderate and high stay
       (a suspicious result is never hidden) but are marked ``quality_limited``.
    4. The same holds for a model whose card is not ``"status": "trained"`` (the
       placeholder): its low result is ``unknown`` too (blocking code ``untrained_model``).
    """
    if in_scope is False:
        return {"level": OUT_OF_SCOPE, "model_level": None, "tds_band": None, "quality_limited": True,
                "blocking_warnings": [OUT_OF_SCOPE], "reasons": [OUT_OF_SCOPE], "suspicious": False}
    level_model = model_level(probability, thresholds["screening"], thresholds["balanced"])
    index = LEVELS.index(level_model)
    reasons = [f"model_{level_model}"]
    steps = TDS_BAND_STEPS.get(tds_band or "", 0)
    if steps:
        raised = min(max(index, min(steps, index + 1)), len(LEVELS) - 1)
        if raised > index:
            reasons.append(f"tds_{tds_band}")
        index = max(index, raised)
    level = LEVELS[index]
    blocking = [w for w in warnings if w not in NON_BLOCKING_WARNINGS]
    quality_limited = bool(blocking)
    if model_status != "trained":
        blocking.append(UNTRAINED)
    if blocking and level == "low":
        level = UNKNOWN
        reasons.append("untrained_model" if blocking == [UNTRAINED] else "quality")
    return {
        "level": level,
        "model_level": level_model,
        "tds_band": tds_band,
        "quality_limited": quality_limited,
        "blocking_warnings": blocking,
        "reasons": reasons,
        "suspicious": level in ("moderate", "high"),
    }


def operating_points(card: dict) -> list[dict[str, Any]]:
    """Validated sensitivity/specificity at each threshold, as far as the card reports them.

    Returns one dict per threshold: ``name``, ``threshold``, ``sensitivity``,
    ``specificity``, their 95 % CIs (``sensitivity_ci``, ``specificity_ci``), ``n`` and
    ``set`` (the evaluated set); the metrics are ``None`` when the card has none (an
    untrained or unevaluated model).
    """
    if card.get("fusion"):  # the shown probability is fused: only numbers measured on what ships count
        return _shipped_points(card)
    thresholds = card["calibration"]["thresholds"]
    metrics = card.get("metrics") or {}
    # Prefer the held-out test set, then validation, then whatever set is reported.
    order = sorted(metrics, key=lambda s: (0 if "test" in s else 1 if "val" in s else 2, s))
    points = []
    for name in ("screening", "balanced"):
        threshold = float(thresholds[name])
        point: dict[str, Any] = {"name": name, "threshold": threshold, "sensitivity": None,
                                 "specificity": None, "sensitivity_ci": None,
                                 "specificity_ci": None, "n": None, "set": None}
        for set_name in order:
            values = metrics[set_name]
            block = _metrics_at(values, name, threshold) if isinstance(values, dict) else None
            if block is not None:
                point.update(
                    sensitivity=float(block["sensitivity"]),
                    specificity=float(block["specificity"]),
                    sensitivity_ci=block.get("sensitivity_ci"),
                    specificity_ci=block.get("specificity_ci"),
                    n=values.get("n"),
                    set=set_name,
                )
                break
        points.append(point)
    return points


#: Sets of ``card["external_validation"]`` shown to people, in this order (names: ``set.<key>`` translations).
SHIPPED_SETS = ("ham_test", "ph2", "seed_test")


def _shipped_points(card: dict) -> list[dict[str, Any]]:
    """Operating points of a fused model: its fusion thresholds, with the sensitivity and specificity
    ``benchmarks/external_validation.py`` measured on each set (none when it was not run)."""
    thresholds = card["fusion"]["thresholds"]
    sets = (card.get("external_validation") or {}).get("sets") or {}
    points = []
    for name in ("screening", "balanced"):
        blank = {"name": name, "threshold": float(thresholds[name]), "sensitivity": None, "specificity": None,
                 "sensitivity_ci": None, "specificity_ci": None, "n": None, "set": None}
        measured = [s for s in SHIPPED_SETS if _has_rates((sets.get(s) or {}).get("thresholds", {}).get(name))]
        for set_name in measured:
            block = sets[set_name]["thresholds"][name]
            points.append({**blank, "sensitivity": float(block["sensitivity"]),
                           "specificity": float(block["specificity"]), "n": sets[set_name].get("n"),
                           "set": set_name})
        if not measured:
            points.append(blank)
    return points


def _has_rates(block: Any) -> bool:
    return isinstance(block, dict) and all(
        isinstance(block.get(k), (int, float)) and not isinstance(block.get(k), bool)
        for k in ("sensitivity", "specificity")
    )


def _metrics_at(values: dict, name: str, threshold: float, depth: int = 0) -> dict | None:
    """The block of ``values`` with sensitivity/specificity at threshold ``name``.

    Accepts the shapes an evaluation may write: a nested block under the threshold's
    name (at any depth up to 3), flat keys ``sensitivity_<name>``, or a flat block whose
    ``threshold`` equals the card's threshold.
    """
    if isinstance(values.get(name), dict) and _has_rates(values[name]):
        return values[name]
    flat = {k: values.get(f"{k}_{name}") for k in ("sensitivity", "specificity")}
    if _has_rates(flat):
        return flat
    if depth == 0 and _has_rates(values) and isinstance(values.get("threshold"), (int, float)):
        if abs(float(values["threshold"]) - threshold) < 1e-9:
            return values
    if depth < 3:
        for child in values.values():
            if isinstance(child, dict):
                found = _metrics_at(child, name, threshold, depth + 1)
                if found is not None:
                    return found
    return None


# --- the components (imported lazily: other helpers own them) -----------------------------

_classifiers: dict = {}  # model path (None: the embedded model) -> Classifier
_load_errors: dict = {}  # model path -> the ModelError its load raised
_classifier_lock = threading.Lock()


def get_classifier(model_path: str | None = None):
    """The classifier of ``model_path``, loaded once per process (gunicorn worker) and path.

    A model that fails to load is not retried on every request (each try re-hashes the
    whole ONNX file under the lock): the error is kept, like a success, until restart.
    """
    with _classifier_lock:
        if model_path in _load_errors:
            raise _load_errors[model_path]
        if model_path not in _classifiers:
            try:
                from melascan.inference import Classifier

                _classifiers[model_path] = Classifier(model_path) if model_path else Classifier.default()
            except ImportError as exc:
                _load_errors[model_path] = ModelError(f"the inference runtime is not installed ({exc})")
                raise _load_errors[model_path] from None
            except ModelError as exc:
                _load_errors[model_path] = exc
                raise
        return _classifiers[model_path]


def check_model(model_path: str | None = None) -> dict:
    """Validate the model card and file checksums without loading onnxruntime; the card."""
    from pathlib import Path

    try:
        from melascan.inference.card import load_card, verify_files
        from melascan.inference.classifier import default_model_dir
    except ImportError as exc:
        raise ModelError(f"the inference runtime is not installed ({exc})") from None
    path = Path(model_path) if model_path else default_model_dir()
    folder = path if path.is_dir() else path.parent
    card = load_card(folder)
    verify_files(card, folder)
    return card


def model_card(model_path: str | None = None) -> dict:
    """The model card of the classifier the app uses."""
    return get_classifier(model_path).card


def _lesion_api():
    try:
        from melascan.lesion import analyze_lesion, assess_quality, make_overlays
    except ImportError as exc:
        raise ModelError(f"the lesion analysis is not installed ({exc})") from None
    return analyze_lesion, assess_quality, make_overlays


# --- image helpers ------------------------------------------------------------------------


def shrink(rgb: np.ndarray, max_side_px: int) -> np.ndarray:
    """``rgb`` scaled down (never up) so its longer side is at most ``max_side_px``."""
    h, w = rgb.shape[:2]
    scale = max_side_px / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def encode(rgb: np.ndarray, fmt: str = "PNG", quality: int = 90) -> tuple[str, bytes]:
    """``(mime, bytes)`` of ``rgb`` encoded as PNG or JPEG, without metadata."""
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(rgb[:, :, :3]).astype(np.uint8), "RGB")
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality, optimize=True)
        return "image/jpeg", buf.getvalue()
    # Level 1: ~3x faster than the default 6 for ~10 % larger overlays (docs/benchmarks.md).
    img.save(buf, "PNG", optimize=False, compress_level=1)
    return "image/png", buf.getvalue()


def heatmap_overlay(rgb: np.ndarray, cam: np.ndarray, max_alpha: float = 0.6) -> np.ndarray:
    """Blend a [0, 1] CAM (any size) onto ``rgb`` with the JET colour map.

    The opacity follows the map (``max_alpha * cam``): where the model found no
    evidence the picture shows through unchanged, so the hot spots stand out.
    """
    h, w = rgb.shape[:2]
    cam = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0)
    if cam.shape != (h, w):
        cam = cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap(np.uint8(cam * 255), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (max_alpha * cam)[:, :, None]
    return np.clip(rgb.astype(np.float32) * (1 - alpha) + colored * alpha, 0, 255).astype(np.uint8)


def source_format(image_bytes: bytes) -> str | None:
    """The container format Pillow sees (``JPEG``, ``PNG`` ...), read from the header only."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as img:
            return img.format
    except Exception:  # load_rgb already accepted the bytes; this is only a hint
        return None


# --- the glue -----------------------------------------------------------------------------


def decode_upload(image_bytes: bytes, filename: str) -> np.ndarray:
    """Decode an upload with ``melascan.imageio.load_rgb``; ``ImageError`` names the file."""
    if not image_bytes:
        raise ImageError(f"{filename}: the file is empty (0 bytes)")
    source = io.BytesIO(image_bytes)
    source.name = filename
    return load_rgb(source, reduce_to_px=DECODE_MIN_SIDE_PX)


def run_analysis(image_bytes: bytes, filename: str, *, model_path: str | None = None) -> dict[str, Any]:
    """Analyse one uploaded image; see the module docstring for the result's shape.

    Raises ``ImageError`` for an unusable image and ``ModelError`` if the model or the
    lesion analysis is unavailable. Nothing is stored here.
    """
    rgb = decode_upload(image_bytes, filename)
    work = shrink(rgb, ANALYSIS_MAX_SIDE_PX)
    clf = get_classifier(model_path)
    analyze_lesion, assess_quality, make_overlays = _lesion_api()

    try:
        lesion = analyze_lesion(work)
    except ImageError as exc:  # e.g. too elongated: name the file
        raise ImageError(f"{filename}: {exc}") from None
    quality = _quality_warnings(lesion, work, assess_quality)
    lesion_dict = json_safe(lesion.to_dict())
    # Classify the decoded image itself (as `melascan predict` and training do): network,
    # scope and fusion with the lesion measurements, the CAM placed on the analysis image.
    prediction = clf.predict_rgbs([rgb], with_cam=True, lesions=[lesion_dict], cam_shape=work.shape[:2])[0]
    cam = prediction.cam

    card = clf.card
    thresholds = {k: float(v) for k, v in prediction.thresholds.items()}
    probability = float(prediction.probability)
    risk = risk_assessment(probability, thresholds, lesion_dict.get("tds_band"), quality,
                           str(card.get("status")), in_scope=prediction.in_scope)

    fmt = source_format(image_bytes)
    # Stored compactly: the original at the analysed size, overlays as JPEG (~10x smaller than PNG).
    images = {
        "original": encode(work, "JPEG", 90),
        "thumbnail": encode(shrink(rgb, THUMBNAIL_SIDE_PX), "JPEG", 85),
    }
    if risk["level"] != OUT_OF_SCOPE:  # no outline or heatmap drawn on something that is not a lesion
        images["heatmap"] = encode(heatmap_overlay(work, cam), "JPEG", 85)
        for kind, overlay in make_overlays(work, lesion).items():
            images[kind] = encode(overlay, "JPEG", 85)

    return {
        "schema": SCHEMA,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "filename": filename,
        "image": {
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "analysis_width": int(work.shape[1]),
            "analysis_height": int(work.shape[0]),
            "format": fmt,
            "sha256": hashlib.sha256(image_bytes).hexdigest(),
        },
        "model": {
            "name": card.get("name"),
            "status": card.get("status"),
            "warnings": list(card.get("warnings", [])),
            "architecture": card.get("architecture"),
            "created": card.get("created"),
            "temperature": card["calibration"].get("temperature"),
            "thresholds": thresholds,
            "operating_points": operating_points(card),
            "onnx_sha256": (card.get("files", {}).get("onnx") or {}).get("sha256"),
        },
        "classification": {
            "probability": probability,
            "in_scope": prediction.in_scope,
            "scope_score": prediction.scope_score,
            "network_probability": prediction.network_probability,
            "fused": prediction.fused,
            "labels": json_safe(dict(prediction.labels)),
            "logits": json_safe(np.asarray(prediction.logits).ravel()),
        },
        "lesion": lesion_dict,
        "quality": {"warnings": quality, "can_judge": not risk["quality_limited"]},
        "risk": risk,
        "overlays": sorted(k for k in images if k not in ("original", "thumbnail")),
        "images": images,
    }


def _quality_warnings(lesion, work: np.ndarray, assess_quality) -> list[str]:
    """Quality codes (blocking) then segmentation flags (informational), without repeats.

    ``analyze_lesion`` already runs the quality checks (``lesion.quality``); only if an
    analysis object lacks them is ``assess_quality`` called.
    """
    codes = getattr(lesion, "quality", None)
    if not isinstance(codes, (list, tuple)):
        codes = assess_quality(work)
    segmentation = getattr(lesion, "segmentation", None)
    flags = list(getattr(segmentation, "flags", []) or [])
    return [str(c) for c in dict.fromkeys([*codes, *flags])]


def split_images(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """``(json_part, images)``: the result without its image bytes, and the bytes."""
    images = result.get("images", {})
    return {k: v for k, v in result.items() if k != "images"}, images
