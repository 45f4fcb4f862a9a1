"""The glue where the web app meets the model and the lesion analysis.

``run_analysis(image_bytes, filename)`` decodes an upload (``images``), asks the classifier
(``model.get_classifier``) for a prediction with its class activation map, segments the lesion
and measures ABCD/TDS (``melascan.lesion``), collects the image-quality codes, and combines
everything into a risk level (``risk.risk_assessment``, documented there and in docs/web.md).

It returns a dict: every key is JSON-safe except ``"images"``, which maps an image
kind (``original``, ``thumbnail``, ``heatmap``, ``contour``, ...) to ``(mime, bytes)``;
the caller stores those separately (``split_images``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import numpy as np

from melascan.errors import ImageError
from melascan.inference.cam import cam_inside_fraction, heatmap_overlay
from melascan.lesion import analyze_lesion, make_overlays
from melascan.serialization import json_safe
from melascan.web.cam import mostly_outside
from melascan.web.exposure import exposure_warnings
from melascan.web.images import decode_upload, encode, shrink, source_header
from melascan.web.model import get_classifier
from melascan.web.risk import OUT_OF_SCOPE, look_alikes, operating_points, risk_assessment

SCHEMA = "melascan.analysis/1"

#: Lesion analysis and CAM run on a copy whose longer side is at most this many pixels.
ANALYSIS_MAX_SIDE_PX = 1024
THUMBNAIL_SIDE_PX = 256


def run_analysis(image_bytes: bytes, filename: str, *, model_path: str | None = None,
                 mm_per_px: float | None = None) -> dict[str, Any]:
    """Analyse one uploaded image; see the module docstring for the result's shape.

    ``mm_per_px``: the scale the person entered, in millimetres per pixel of the file as
    uploaded; the diameter is then also given in mm. Raises ``ImageError`` for an unusable
    image and ``ModelError`` if the model is unavailable. Nothing is stored here.
    """
    rgb = decode_upload(image_bytes, filename)
    work = shrink(rgb, ANALYSIS_MAX_SIDE_PX)
    clf = get_classifier(model_path)
    fmt, source_side = source_header(image_bytes)
    # The entered scale is per pixel of the file; the lesion is measured on the smaller ``work``.
    work_mm_per_px = None
    if mm_per_px is not None:
        work_mm_per_px = mm_per_px * (source_side or max(rgb.shape[:2])) / max(work.shape[:2])

    try:
        lesion = analyze_lesion(work, work_mm_per_px)
    except ImageError as exc:  # e.g. too elongated: name the file
        raise ImageError(f"{filename}: {exc}") from None
    lesion_dict = json_safe(lesion.to_dict())
    quality = _quality_warnings(lesion)
    # Classify the decoded image itself (as `melascan predict` and training do): network,
    # scope and fusion with the lesion measurements, the CAM placed on the analysis image.
    prediction = clf.predict_rgbs([rgb], with_cam=True, lesions=[lesion_dict], cam_shape=work.shape[:2])[0]
    cam_inside = cam_inside_fraction(prediction.cam, lesion.mask) if lesion.found else None

    card = clf.card
    thresholds = {k: float(v) for k, v in prediction.thresholds.items()}
    probability = float(prediction.probability)
    risk = risk_assessment(probability, thresholds, lesion_dict.get("tds_band"), quality,
                           str(card.get("status")), in_scope=prediction.in_scope, familiar=prediction.familiar)

    # Stored compactly: the original at the analysed size, overlays as JPEG (~10x smaller than PNG).
    images = {
        "original": encode(work, "JPEG", 90),
        "thumbnail": encode(shrink(rgb, THUMBNAIL_SIDE_PX), "JPEG", 85),
    }
    if risk["level"] != OUT_OF_SCOPE:  # no outline or heatmap drawn on something that is not a lesion
        images["heatmap"] = encode(heatmap_overlay(work, prediction.cam), "JPEG", 85)
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
            "mm_per_px": mm_per_px,
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
            "look_alikes": look_alikes(card),
            "onnx_sha256": (card.get("files", {}).get("onnx") or {}).get("sha256"),
        },
        "classification": {
            "probability": probability,
            "in_scope": prediction.in_scope,
            "scope_score": prediction.scope_score,
            "familiar": prediction.familiar,
            "network_probability": prediction.network_probability,
            "fused": prediction.fused,
            "labels": json_safe(dict(prediction.labels)),
            "logits": json_safe(np.asarray(prediction.logits).ravel()),
            "cam_inside_lesion": cam_inside,
            "cam_mostly_outside": mostly_outside(cam_inside),
        },
        "lesion": lesion_dict,
        "quality": {"warnings": quality, "can_judge": not risk["quality_limited"]},
        "risk": risk,
        "overlays": sorted(k for k in images if k not in ("original", "thumbnail")),
        "images": images,
    }


def _quality_warnings(lesion) -> list[str]:
    """The lesion analysis's quality codes (blocking), the web's exposure codes, then the
    segmentation's flags (informational), without repeats."""
    flags = list(lesion.segmentation.flags)
    return [str(c) for c in dict.fromkeys([*lesion.quality, *exposure_warnings(lesion), *flags])]


def split_images(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """``(json_part, images)``: the result without its image bytes, and the bytes."""
    images = result.get("images", {})
    return {k: v for k, v in result.items() if k != "images"}, images
