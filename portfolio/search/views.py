"""The staff search page (`/search?q=`), reached from the search box in the staff header."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from portfolio import db
from portfolio.paging import requested_page
from portfolio.search.queries import may_search, search

bp = Blueprint("search", __name__)

KIND_LABELS = {"evidence": "Evidence", "feedback": "Assessor feedback", "comment": "Comment"}


@bp.route("/search")
@login_required
def results() -> Any:
    if not may_search(current_user):
        abort(403)
    found = search(db.session(), current_user, request.args.get("q"), requested_page())
    return render_template("search/results.html", found=found, kinds=KIND_LABELS)


@bp.app_context_processor
def _search_box() -> dict[str, Any]:
    """Whether the header shows the search box: for staff, on every page but the search page."""
    def show_search_box() -> bool:
        return (current_user.is_authenticated and may_search(current_user)
                and request.endpoint != "search.results")

    return {"show_search_box": show_search_box}
