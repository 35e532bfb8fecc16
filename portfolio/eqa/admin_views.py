"""Centre admin pages for EQA access packs: list, create, read (with the access log), revoke."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from portfolio import db
from portfolio.admin.forms import choices
from portfolio.enrolments.queries import list_centre_enrolments
from portfolio.eqa import services
from portfolio.eqa.forms import PackForm, RevokeForm
from portfolio.errors import InvalidTransition, ValidationFailed
from portfolio.models import EqaAccessLog, Role
from portfolio.paging import paginate
from portfolio.security import roles_required
from portfolio.viewkit import form_action

bp = Blueprint("eqa_admin", __name__, url_prefix="/admin/eqa-packs")
DEFAULT_DAYS = 30


def today() -> date:
    return date.today()


@bp.route("")
@roles_required(Role.ADMIN)
def packs() -> Any:
    s = db.session()
    rows = services.list_centre_packs(s, current_user.centre_id)
    return render_template("eqa/admin_packs.html", packs=rows, today=today(),
                           counts=services.log_counts(s, [p.id for p in rows]))


def _fill_choices(form: PackForm) -> None:
    s = db.session()
    form.eqa_id.choices = choices([(0, "Choose a person")] + [
        (u.id, f"{u.full_name} ({u.email})") for u in services.centre_eqas(s,
                                                                           current_user.centre_id)])
    form.enrolment_ids.choices = choices([
        (e.id, f"{e.learner.full_name} · Unit {e.unit.number} · assessor "
               f"{e.assessor.full_name} · {e.status}")
        for e in list_centre_enrolments(s, current_user.centre_id)])


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_pack() -> Any:
    form = PackForm()
    _fill_choices(form)
    if not form.is_submitted():
        form.valid_from.data = today()
        form.valid_to.data = today() + timedelta(days=DEFAULT_DAYS)
    status = 200
    if form.validate_on_submit():
        refused, pack = form_action(form, lambda: services.create_pack(
            db.session(), services.PackInput(
                eqa_id=form.eqa_id.data, enrolment_ids=list(form.enrolment_ids.data or []),
                title=form.title.data or "", note=form.note.data or "",
                valid_from=form.valid_from.data, valid_to=form.valid_to.data),
            actor=current_user, today=today()))
        status = refused or 200
        if not refused:
            flash(f"The pack is ready. {pack.eqa.full_name} can open it from "
                  f"{pack.valid_from:%d %b %Y}.", "success")
            return redirect(url_for("eqa_admin.pack", pack_id=pack.id))
    elif form.is_submitted():
        status = 422
    return render_template("eqa/admin_new.html", form=form), status


@bp.route("/<int:pack_id>")
@roles_required(Role.ADMIN)
def pack(pack_id: int) -> Any:
    s = db.session()
    item = services.admin_pack(s, pack_id, current_user)
    log = paginate(s, services.access_log_query(item), (EqaAccessLog.id,),
                   size=services.LOG_PAGE, param="log", descending=True)
    return render_template("eqa/admin_pack.html", pack=item, today=today(),
                           enrolments=services.pack_enrolments(s, item),
                           staff=services.staff_list(s, item), log=log,
                           revoke_form=RevokeForm())


@bp.route("/<int:pack_id>/revoke", methods=["POST"])
@roles_required(Role.ADMIN)
def revoke(pack_id: int) -> Any:
    s = db.session()
    item = services.admin_pack(s, pack_id, current_user)
    form = RevokeForm()
    if not form.validate_on_submit():
        raise ValidationFailed("The reason is too long: keep it under 300 characters.")
    try:
        services.revoke_pack(s, item, actor=current_user, reason=form.reason.data or "",
                             today=today())
    except InvalidTransition:
        s.rollback()
        raise
    s.commit()
    flash(f"The pack is revoked: {item.eqa.full_name} can no longer open it.", "success")
    return redirect(url_for("eqa_admin.pack", pack_id=item.id))
