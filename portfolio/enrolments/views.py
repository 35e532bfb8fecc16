"""One enrolment: the learner's unit, their assessor and IQA (later issues add the portfolio)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from portfolio import db
from portfolio.criteria.queries import get_unit_view
from portfolio.enrolments.queries import get_enrolment
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.permissions import can_add_evidence

bp = Blueprint("enrolments", __name__)


@bp.route("/enrolments/<int:enrolment_id>")
@login_required
def detail(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    unit = get_unit_view(s, enrolment.unit_id)
    return render_template(
        "enrolments/detail.html", enrolment=enrolment, unit=unit,
        coverage=compute_coverage(s, enrolment, date.today()),
        can_add=any(can_add_evidence(current_user, enrolment, k.added_by) for k in KINDS.values()),
    )
