"""Units and their criteria, with the unit's assessment rules and guidance."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from portfolio import db
from portfolio.criteria.queries import get_unit_view
from portfolio.criteria.unitfile import METHODS
from portfolio.enrolments.queries import list_units
from portfolio.permissions import can_view_unit

bp = Blueprint("criteria", __name__)


@bp.route("/units")
@login_required
def units() -> Any:
    if not can_view_unit(current_user):
        abort(403)
    return render_template("criteria/units.html", units=list_units(db.session()))


@bp.route("/units/<int:unit_id>")
@login_required
def unit(unit_id: int) -> Any:
    if not can_view_unit(current_user):
        abort(403)
    return render_template("criteria/unit.html", unit=get_unit_view(db.session(), unit_id),
                           methods=METHODS)
