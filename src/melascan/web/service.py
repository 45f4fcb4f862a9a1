"""What pages and the API share: analyse-and-store, and the JSON view of a stored analysis."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for

from melascan.web import db
from melascan.web.analysis import run_analysis, split_images
from melascan.web.errors import not_found
from melascan.web.limits import check_quota
from melascan.web.owner import current_owner

#: Image kinds a result may have, in display order.
IMAGE_KINDS = ("original", "thumbnail", "contour", "heatmap", "axes", "colors", "structures")


def lesion_from_form(*, lock: bool = False) -> db.Lesion | None:
    """The lesion a form names (``lesion_id``), owned by this browser; None when the field is
    empty, 404 when no such lesion is in this history. ``lock``: locked until commit."""
    lesion_id = request.form.get("lesion_id", "").strip()
    if not lesion_id:
        return None
    lesion = (db.lock_lesion if lock else db.get_lesion)(current_owner(), lesion_id)
    if lesion is None:
        raise not_found("error.not_found.lesion")
    return lesion


def analyze_and_store(data: bytes, filename: str, lesion: db.Lesion | None = None,
                      sample: dict | None = None, mm_per_px: float | None = None) -> db.Analysis:
    """Run the full analysis on an upload and save it in this browser's history.

    ``sample``: ``{"label", "source"}`` of a shipped demo image, kept with the result so its
    page shows the known diagnosis. ``mm_per_px``: the scale entered with the upload.
    Raises before anything is stored if the image or the model is unusable.
    """
    owner = current_owner()
    check_quota(owner)
    result = run_analysis(data, filename, model_path=current_app.config["MODEL_PATH"], mm_per_px=mm_per_px)
    if sample is not None:
        result["sample"] = sample
    json_part, images = split_images(result)
    return db.save_analysis(owner, filename, json_part, images, lesion)


def analysis_json(row: db.Analysis) -> dict[str, Any]:
    """The API representation: the stored analysis plus id, lesion and links."""
    kinds = [k for k in IMAGE_KINDS if k in {"original", "thumbnail", *row.result.get("overlays", [])}]
    # The stored row's time wins over the analysis's own ``created_at`` (the same moment, to the second).
    return {
        **row.result,
        "id": row.id,
        "created_at": row.created_at.isoformat(timespec="seconds") if row.created_at else None,
        "tracked_lesion": {"id": row.lesion.id, "name": row.lesion.name} if row.lesion else None,
        "links": {
            "self": url_for("api.get_analysis", analysis_id=row.id),
            "page": url_for("pages.result", analysis_id=row.id),
            "pdf": url_for("reports.pdf", analysis_id=row.id),
            "fhir": url_for("reports.fhir", analysis_id=row.id),
            "images": {k: url_for("pages.image", analysis_id=row.id, kind=k) for k in kinds},
        },
    }


def summary_json(row: db.Analysis) -> dict[str, Any]:
    """A short entry for history lists."""
    return {
        "id": row.id,
        "created_at": row.created_at.isoformat(timespec="seconds") if row.created_at else None,
        "filename": row.filename,
        "probability": row.probability,
        "risk_level": row.risk_level,
        "tracked_lesion": {"id": row.lesion.id, "name": row.lesion.name} if row.lesion else None,
        "links": {
            "self": url_for("api.get_analysis", analysis_id=row.id),
            "page": url_for("pages.result", analysis_id=row.id),
            "thumbnail": url_for("pages.image", analysis_id=row.id, kind="thumbnail"),
        },
    }
