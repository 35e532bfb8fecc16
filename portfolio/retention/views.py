"""The centre admin's retention pages: the period, what is due, legal holds, removing now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from portfolio import db
from portfolio.enrolments.queries import get_centre_enrolment
from portfolio.export.files import export_files
from portfolio.export.services import render_cache_dir
from portfolio.models import Enrolment, Role
from portfolio.retention import services as retention
from portfolio.retention.forms import ConfirmRemoval, HoldForm, PolicyForm
from portfolio.security import roles_required
from portfolio.viewkit import file_store, form_action, loads

bp = Blueprint("retention", __name__, url_prefix="/admin")


def _page(form: PolicyForm, status: int = 200) -> Any:
    centre = current_user.centre
    return render_template("retention/page.html", form=form, centre=centre,
                           view=retention.overview(db.session(), centre),
                           confirm=ConfirmRemoval()), status


@bp.route("/retention", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def page() -> Any:
    centre = current_user.centre
    form = PolicyForm(obj=centre)
    if form.validate_on_submit():
        refused, changed = form_action(form, lambda: retention.set_policy(
            db.session(), centre, actor=current_user, keep_months=form.work_keep_months.data,
            until_eqa=bool(form.work_until_eqa.data)))
        if refused:
            return _page(form, refused)
        flash("Saved. " + ("Nothing is removed automatically until you choose a period."
                           if centre.work_keep_months is None else
                           f"Learner work is kept {centre.work_keep_months} months after an "
                           "enrolment ends.") if changed else "Nothing changed.", "success")
        return redirect(url_for("retention.page"))
    return _page(form, 422 if form.is_submitted() else 200)


@bp.post("/retention/remove")
@roles_required(Role.ADMIN)
def remove_due() -> Any:
    """Remove now the work the next scheduled run would remove (one enrolment at a time)."""
    if not ConfirmRemoval().validate_on_submit():
        return _page(PolicyForm(obj=current_user.centre), 422)
    s = db.session()
    store, exports = file_store(), export_files(current_app.config)
    cache_dir = render_cache_dir(current_app.config, Path(current_app.instance_path))
    count = 0
    for enrolment in retention.work_due(s, current_user.centre):
        # Locked and read again: a second click, or the scheduled run, may have removed it.
        s.refresh(enrolment, with_for_update=True)
        if enrolment.hold_reason is not None or retention.removed_since_it_ended(enrolment):
            continue
        removal = retention.remove_work(s, enrolment, actor=current_user)
        s.commit()
        retention.delete_removed(s, removal, store, exports, cache_dir)
        count += 1
    flash(f"Removed the learner work of {count} enrolment(s). Their assessment records are "
          "kept." if count else "Nothing was due for removal.", "success")
    return redirect(url_for("retention.page"))


@bp.route("/enrolments/<int:enrolment_id>/hold", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
@loads(enrolment=get_centre_enrolment)
def hold(enrolment: Enrolment) -> Any:
    form = HoldForm()
    status = 200
    if form.validate_on_submit():
        refused, _ = form_action(form, lambda: retention.place_hold(
            db.session(), enrolment, actor=current_user, reason=form.reason.data or ""))
        if not refused:
            flash(f"{enrolment.learner.full_name}'s enrolment is on hold: nothing of it will "
                  "be removed until you lift the hold.", "success")
            return redirect(url_for("retention.hold", enrolment_id=enrolment.id))
        status = refused
    elif form.is_submitted():
        status = 422
    return render_template("retention/hold.html", enrolment=enrolment, form=form,
                           lift=ConfirmRemoval()), status


@bp.post("/enrolments/<int:enrolment_id>/hold/lift")
@roles_required(Role.ADMIN)
@loads(enrolment=get_centre_enrolment)
def lift_hold(enrolment: Enrolment) -> Any:
    form = ConfirmRemoval()
    if not form.validate_on_submit():
        return render_template("retention/hold.html", enrolment=enrolment, form=HoldForm(),
                               lift=form), 422
    refused, _ = form_action(form, lambda: retention.lift_hold(
        db.session(), enrolment, actor=current_user))
    if refused:
        return render_template("retention/hold.html", enrolment=enrolment, form=HoldForm(),
                               lift=form), refused
    flash("The hold is lifted. The centre's retention period applies again.", "success")
    return redirect(url_for("retention.hold", enrolment_id=enrolment.id))
