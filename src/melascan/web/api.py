"""The JSON API (``/api/v1``) and its OpenAPI 3 document (``/api/openapi.json``).

Same owner model as the pages: the ``melascan_owner`` cookie, issued by a successful GET
(keep it in a cookie jar, e.g. ``curl -c jar -b jar``). POST and DELETE need the header
``X-Requested-With`` (``csrf.py``). Errors are ``{"error": {"code", "message"}}`` with a
4xx status (see ``errors.error_response``).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from melascan import __version__
from melascan.web import db
from melascan.web.errors import not_found
from melascan.web.model import model_status
from melascan.web.openapi import openapi_document
from melascan.web.owner import current_owner
from melascan.web.scale import scale_from_form
from melascan.web.service import analysis_json, analyze_and_store, lesion_from_form, summary_json
from melascan.web.uploads import read_upload

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/v1/analyses")
def create_analysis():
    data, filename = read_upload(request)
    row = analyze_and_store(data, filename, lesion_from_form(), mm_per_px=scale_from_form(request.form))
    response = jsonify(analysis_json(row))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_analysis", analysis_id=row.id)
    return response


#: Entries per page of ``GET /api/v1/analyses`` (``?limit=``, at most ``MAX_PAGE``).
PAGE = 50
MAX_PAGE = 200


@bp.get("/v1/analyses")
def list_analyses():
    """One page, newest first: ``?limit=50&offset=0``; ``count`` is the total, ``next`` the next page."""
    owner = current_owner()
    limit = min(max(request.args.get("limit", PAGE, type=int), 1), MAX_PAGE)
    offset = max(request.args.get("offset", 0, type=int), 0)
    rows = db.list_analyses(owner, limit=limit, offset=offset)
    total = db.count_analyses(owner)
    following = url_for("api.list_analyses", limit=limit, offset=offset + limit) if offset + limit < total else None
    return jsonify({"analyses": [summary_json(r) for r in rows], "count": total, "limit": limit,
                    "offset": offset, "next": following})


@bp.delete("/v1/analyses")
def delete_all():
    return jsonify({"deleted": db.delete_all(current_owner())})


@bp.get("/v1/analyses/<analysis_id>")
def get_analysis(analysis_id: str):
    row = _owned(analysis_id)
    return jsonify(analysis_json(row))


@bp.delete("/v1/analyses/<analysis_id>")
def delete_analysis(analysis_id: str):
    db.delete_analysis(_owned(analysis_id))
    return "", 204


def _owned(analysis_id: str) -> db.Analysis:
    row = db.get_analysis(current_owner(), analysis_id)
    if row is None:
        raise not_found("error.not_found.analysis", id=analysis_id)
    return row


@bp.get("/v1/health")
def health():
    """Whether the model loads, and its status (``trained`` / ``untrained``)."""
    status = model_status()
    if status["status"] == "unavailable":
        return jsonify({"ok": False, "version": __version__, "error": status["message"]}), 503
    return jsonify({"ok": True, "version": __version__, "model": {"name": status["name"], "status": status["status"]}})


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
