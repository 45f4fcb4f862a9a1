"""Downloads of one analysis: a PDF report and a FHIR R4 (R4B) JSON Bundle."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort

from melascan.web import db
from melascan.web.i18n import current_language
from melascan.web.owner import current_owner
from melascan.web.report_fhir import build_bundle
from melascan.web.report_pdf import build_pdf

bp = Blueprint("reports", __name__)


def _owned(analysis_id: str) -> db.Analysis:
    return db.get_analysis(current_owner(), analysis_id) or abort(404)


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/results/<analysis_id>/report.pdf")
def pdf(analysis_id: str):
    row = _owned(analysis_id)
    images = {i.kind: i.data for i in row.images}
    body = build_pdf(row.result, images, analysis_id=row.id, created_at=row.created_at,
                     lesion_name=row.lesion.name if row.lesion else None, lang=current_language())
    return _download(body, "application/pdf", f"melascan-{row.id}.pdf")


@bp.get("/results/<analysis_id>/fhir.json")
def fhir(analysis_id: str):
    row = _owned(analysis_id)
    images = {i.kind: (i.mime, i.data) for i in row.images if i.kind in ("original", "contour", "heatmap")}
    bundle = build_bundle(row.result, images, analysis_id=row.id, created_at=row.created_at,
                          lesion_name=row.lesion.name if row.lesion else None)
    body = json.dumps(bundle, indent=2, ensure_ascii=False).encode("utf-8")
    return _download(body, "application/fhir+json", f"melascan-{row.id}.fhir.json")
