"""Each person's home page: one panel per role they hold."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from portfolio import db
from portfolio.dashboard import todo
from portfolio.enrolments.queries import (
    list_units,
    list_visible_enrolments,
    load_enrolments,
    visible_enrolment_ids,
)
from portfolio.eqa.services import packs_of
from portfolio.evidence.coverage import compute_coverage
from portfolio.models import Enrolment, EnrolmentStatus, Role, User, UserRole
from portfolio.paging import paginate
from portfolio.sampling.services import open_actions_for_owner

bp = Blueprint("dashboard", __name__)
HOME_PAGE_SIZE = 25


def _admin_summary(centre_id: int) -> dict[str, Any]:
    s = db.session()
    role_counts = Counter(dict(s.execute(
        select(UserRole.role, func.count())
        .join(User, User.id == UserRole.user_id)
        .where(User.centre_id == centre_id, User.is_active.is_(True))
        .group_by(UserRole.role)
    ).all()))
    enrolments = s.scalar(
        select(func.count(Enrolment.id))
        .join(User, User.id == Enrolment.learner_id)
        .where(User.centre_id == centre_id)
    )
    return {"roles": role_counts, "enrolments": enrolments or 0}


@bp.route("/")
@login_required
def home() -> Any:
    s = db.session()
    panels: dict[str, Any] = {}
    roles = current_user.roles

    def load(ids: list[int]) -> list[Any]:
        return load_enrolments(s, ids)

    if Role.LEARNER in roles:
        own = list_visible_enrolments(s, current_user, role=Role.LEARNER)
        # A learner has a handful of enrolments at most; each coverage is a fixed few queries.
        panels["learner"] = [(e, compute_coverage(s, e, date.today())) for e in own]
    # The assessor's and the IQA's learners are paged here: a caseload has 60, an IQA hundreds
    # (the assessor's whole caseload, with filters, is on /caseload).
    if Role.ASSESSOR in roles:
        panels["assessor"] = paginate(s, visible_enrolment_ids(current_user, role=Role.ASSESSOR),
                                      (User.full_name, Enrolment.id),
                                      size=HOME_PAGE_SIZE, param="caseload", load=load)
    if Role.IQA in roles:
        panels["iqa"] = paginate(s, visible_enrolment_ids(current_user, role=Role.IQA),
                                 (User.full_name, Enrolment.id),
                                 size=HOME_PAGE_SIZE, param="iqa", load=load)
    if Role.EQA in roles:
        panels["eqa"] = [p for p in packs_of(s, current_user) if p.state(date.today()) == "open"]
    if Role.ADMIN in roles:
        panels["admin"] = _admin_summary(current_user.centre_id)
    iqa_actions = open_actions_for_owner(s, current_user) if Role.ASSESSOR in roles else []
    todos: list[todo.Todo] = []
    if Role.LEARNER in roles:
        todos += todo.learner_todo(s, current_user, [e for e, _c in panels["learner"]])
    if Role.ASSESSOR in roles:
        todos += todo.assessor_todo(s, current_user)
    if Role.IQA in roles:
        todos += todo.iqa_todo(s, current_user, date.today())
    if Role.ADMIN in roles:
        todos += todo.admin_todo(s, current_user)
    todos.sort(key=lambda t: not t.urgent)  # stable: the roles' own order otherwise
    completed = {e.id: todo.completion(s, e) for e, _c in panels.get("learner", [])
                 if e.status == EnrolmentStatus.COMPLETED}
    return render_template("dashboard/home.html", panels=panels, units=list_units(s),
                           iqa_actions=iqa_actions, today=date.today(), todos=todos,
                           waited=todo.waited, completed=completed,
                           show_todo=bool(set(roles) - {Role.EQA}))
