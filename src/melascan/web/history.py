"""History pages: list, name lesions, compare over time, delete.

Every lookup goes through ``db.get_*(current_owner(), ...)``: an id that belongs to
another browser is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for

from melascan.web import db
from melascan.web.charts import timeline_svg
from melascan.web.errors import RequestError
from melascan.web.i18n import t
from melascan.web.names import LESION_NAME_MAX, clean_name
from melascan.web.owner import current_owner
from melascan.web.reminder import WEEKS, reminder_date, reminder_ics
from melascan.web.service import lesion_from_form

bp = Blueprint("history", __name__, url_prefix="/history")


def flash(message: str) -> None:
    """Flask's ``flash``, but only the latest message is kept: a client that never
    loads the next page cannot pile messages up in the session cookie."""
    session["_flashes"] = [("message", message)]


#: Analyses per history page.
PAGE_SIZE = 50


@bp.get("")
def index():
    """This browser's analyses, newest first, ``PAGE_SIZE`` per page (``?page=2`` ...)."""
    owner = current_owner()
    pages = max(1, -(-db.count_analyses(owner) // PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    analyses = db.list_analyses(owner, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render_template("history.html", analyses=analyses, lesions=db.list_lesions(owner),
                           page=page, pages=pages)


@bp.post("/<analysis_id>/lesion")
def assign_lesion(analysis_id: str):
    """Put an analysis in a lesion: an existing one (``lesion_id``) or a new name (``name``).

    An empty choice removes it from its lesion.
    """
    owner = current_owner()
    row = db.get_analysis(owner, analysis_id) or abort(404)
    chosen = lesion_from_form(lock=True)
    name = request.form.get("name", "").strip()
    old = row.lesion
    if chosen is not None:
        row.lesion = chosen
    elif clean_name(name, LESION_NAME_MAX):
        row.lesion = db.create_lesion(owner, name)
    else:
        row.lesion = None
    if old is not None and old is not row.lesion:
        db.drop_if_empty(old)
    db.session().commit()
    flash(t("flash.saved_to_lesion", name=row.lesion.name) if row.lesion else t("flash.removed_from_lesion"))
    target = request.form.get("next", "")
    if target == "lesion" and row.lesion:
        return redirect(url_for("history.lesion", lesion_id=row.lesion.id), code=303)
    return redirect(url_for("pages.result", analysis_id=row.id), code=303)


@bp.post("/<analysis_id>/delete")
def delete(analysis_id: str):
    row = db.get_analysis(current_owner(), analysis_id) or abort(404)
    db.delete_analysis(row)
    flash(t("flash.deleted_one"))
    return redirect(url_for("history.index"), code=303)


@bp.post("/delete-all")
def delete_all():
    if request.form.get("confirm") != "yes":
        raise RequestError("bad_request", key="error.bad_request.confirm_delete_all")
    count = db.delete_all(current_owner())
    flash(t("flash.deleted_all", count=count))
    return redirect(url_for("history.index"), code=303)


@bp.get("/lesions/<lesion_id>")
def lesion(lesion_id: str):
    """A named lesion over time: chart, table, side-by-side of two dates, add an image."""
    owner = current_owner()
    item = db.get_lesion(owner, lesion_id) or abort(404)
    analyses = list(item.analyses)
    ids = [a.id for a in analyses]
    left = request.args.get("a") if request.args.get("a") in ids else (ids[0] if ids else None)
    right = request.args.get("b") if request.args.get("b") in ids else (ids[-1] if ids else None)
    by_id = {a.id: a for a in analyses}
    return render_template(
        "lesion.html",
        lesion=item,
        analyses=analyses,
        chart=timeline_svg(analyses),
        left=by_id.get(left),
        right=by_id.get(right),
        reminder_weeks=WEEKS,
    )


@bp.get("/lesions/<lesion_id>/reminder.ics")
def reminder(lesion_id: str):
    """A calendar entry to photograph the lesion again in ``?weeks=`` weeks (default 12)."""
    item = db.get_lesion(current_owner(), lesion_id) or abort(404)
    low, high, default = WEEKS
    text = request.args.get("weeks", "").strip() or str(default)
    weeks = int(text) if text.isdigit() else None
    if weeks is None or not low <= weeks <= high:
        raise RequestError("bad_request", key="error.bad_request.weeks", low=low, high=high)
    day = reminder_date(datetime.now(timezone.utc).date(), weeks)
    body = reminder_ics(t("ics.summary", name=item.name), t("ics.description", name=item.name), day)
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="melascan-recheck-{day.isoformat()}.ics"'
    return response


@bp.post("/lesions/<lesion_id>/rename")
def rename_lesion(lesion_id: str):
    item = db.lock_lesion(current_owner(), lesion_id) or abort(404)
    name = clean_name(request.form.get("name"), LESION_NAME_MAX)
    if not name:
        raise RequestError("bad_request", key="error.bad_request.lesion_name")
    item.name = name
    db.session().commit()
    return redirect(url_for("history.lesion", lesion_id=item.id), code=303)


@bp.get("/compare")
def compare():
    """Two of this browser's analyses side by side: ``?a=<id>&b=<id>`` or ``?ids=<id>&ids=<id>``."""
    owner = current_owner()
    ids = request.args.getlist("ids") or [request.args.get("a", ""), request.args.get("b", "")]
    ids = [i for i in ids if i]
    if len(ids) != 2 or ids[0] == ids[1]:  # back to the list, saying why, in the reader's language
        flash(t("compare.choose_two"))
        return redirect(url_for("history.index"), code=303)
    rows = [db.get_analysis(owner, i) or abort(404) for i in ids]
    left, right = sorted(rows, key=lambda a: a.created_at)
    return render_template("compare.html", left=left, right=right, chart=timeline_svg([left, right]))
