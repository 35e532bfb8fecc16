"""Centre admin pages: people, roles, enrolments and the centre's settings."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portfolio import db, notify
from portfolio.admin.forms import EnrolmentForm, PersonForm, choices
from portfolio.audit import record_event
from portfolio.auth import resets
from portfolio.auth import services as accounts
from portfolio.auth.forms import ConfirmForm
from portfolio.db import utcnow
from portfolio.display import valid_timezone
from portfolio.enrolments import services as enrolments
from portfolio.enrolments.queries import (
    centre_enrolment_ids,
    get_centre_enrolment,
    list_units,
    load_enrolments,
)
from portfolio.errors import ValidationFailed
from portfolio.models import Enrolment, Role, Unit, User
from portfolio.paging import paginate
from portfolio.security import roles_required
from portfolio.viewkit import form_action, loads

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/people")
@roles_required(Role.ADMIN)
def people() -> Any:
    search = (request.args.get("q") or "").strip()
    s = db.session()
    page = paginate(s, accounts.users_query(current_user.centre_id, search),
                    (User.full_name, User.id))
    invitations = resets.pending_invitations(s, current_user.centre_id)
    return render_template("admin/people.html", people=page.items, page=page, q=search,
                           invitations=invitations, now=utcnow(), invite_form=ConfirmForm(),
                           invited_ids={i.user_id for i in invitations})


def _invite_days() -> int:
    return int(current_app.config["INVITE_LINK_DAYS"])


def _email_invitation(user: User, raw: str) -> None:
    link = url_for("auth.reset", token=raw, _external=True)
    notify.queue(resets.invitation_email(user, link, inviter=current_user.full_name,
                                         days=_invite_days()))


@bp.post("/invitations/<int:invitation_id>/resend")
@roles_required(Role.ADMIN)
def resend_invitation(invitation_id: int) -> Any:
    s = db.session()
    invitation = resets.get_invitation(s, invitation_id, current_user)
    user = invitation.user
    raw = resets.invite(s, user, actor=current_user, days=_invite_days())
    _email_invitation(user, raw)
    s.commit()
    flash(f"Sent {user.full_name}'s invitation again; the earlier link no longer works.",
          "success")
    return redirect(url_for("admin.people") + "#invitations-title")


@bp.post("/invitations/<int:invitation_id>/cancel")
@roles_required(Role.ADMIN)
def cancel_invitation(invitation_id: int) -> Any:
    s = db.session()
    invitation = resets.get_invitation(s, invitation_id, current_user)
    resets.cancel_invitation(s, invitation, actor=current_user)
    s.commit()
    flash(f"Cancelled {invitation.user.full_name}'s invitation: its link no longer works. "
          "You can send a new one from here while their account stays.", "success")
    return redirect(url_for("admin.people") + "#invitations-title")


def _reset_minutes() -> int:
    return int(current_app.config["RESET_LINK_MINUTES"])


def _email_reset(user: User, raw: str) -> None:
    link = url_for("auth.reset", token=raw, _external=True)
    notify.queue(notify.Message(
        (user.email,), "Set a new password",
        f"Hello {user.full_name},\n\n{current_user.full_name} at {user.centre.name} has sent "
        f"you a link to choose a new password for the Evidence Builder. It works once, for "
        f"{_reset_minutes()} minutes:\n\n{link}\n\nUsing it signs you out everywhere else. If "
        f"you did not ask for this, ignore this email: your password stays as it is.\n"))


@bp.route("/people/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_person() -> Any:
    """Add a person and email them an invitation to choose their own password: the admin
    never sees or types it."""
    form = PersonForm()
    status = 200
    if form.validate_on_submit():
        s = db.session()

        def invite() -> Any:
            user = accounts.create_user(
                s, centre=current_user.centre, email=form.email.data,
                full_name=form.full_name.data,
                # No password: the person chooses theirs with the invitation.
                password=None,
                roles=form.roles.data, assessor_status=form.assessor_status.data,
                min_password_length=current_app.config["PASSWORD_MIN_LENGTH"], actor=current_user,
            )
            _email_invitation(user, resets.invite(s, user, actor=current_user,
                                                  days=_invite_days()))
            return user

        refused, user = form_action(form, invite)
        status = refused or 200
        if not refused:
            flash(f"{user.full_name} is invited: we emailed {user.email} a link to choose their "
                  f"password (it works for {_invite_days()} days).", "success")
            return redirect(url_for("admin.people"))
    elif form.is_submitted():
        status = 422
    return render_template("admin/person_form.html", form=form, person=None), status


@bp.route("/people/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
@loads(person=accounts.get_centre_person, by="user_id")
def edit_person(person: User) -> Any:
    form = PersonForm(obj=person)
    if not form.is_submitted():
        form.roles.data = sorted(r.value for r in person.roles)
        form.assessor_status.data = person.assessor_status or "qualified"
    status = 200
    if form.validate_on_submit():
        s = db.session()

        def update() -> Any:
            accounts.update_user(
                s, person, actor=current_user, full_name=form.full_name.data,
                roles=form.roles.data, assessor_status=form.assessor_status.data,
                is_active=form.is_active.data,
            )
            if not form.send_reset.data:
                return None
            raw = resets.send_reset(s, person, actor=current_user, minutes=_reset_minutes())
            _email_reset(person, raw)
            return raw

        refused, raw = form_action(form, update)
        status = 422 if refused else 200  # the form as filled cannot be saved
        if not refused:
            flash(f"Changes to {person.full_name} are saved."
                  + (f" We emailed {person.email} a link to choose a new password (it works "
                     f"for {_reset_minutes()} minutes)." if raw else ""), "success")
            return redirect(url_for("admin.people"))
    elif form.is_submitted():
        status = 422
    return render_template("admin/person_form.html", form=form, person=person), status


@bp.route("/enrolments")
@roles_required(Role.ADMIN)
def enrolments_list() -> Any:
    search = (request.args.get("q") or "").strip()
    s = db.session()
    page = paginate(s, centre_enrolment_ids(current_user.centre_id, search),
                    (User.full_name, Enrolment.id),
                    load=lambda ids: load_enrolments(s, ids))
    return render_template("admin/enrolments.html", enrolments=page.items, page=page, q=search)


def _fill_choices(form: EnrolmentForm) -> None:
    people = [p for p in accounts.list_users(db.session(), current_user.centre_id) if p.is_active]
    form.learner_id.choices = choices([(p.id, f"{p.full_name} ({p.email})")
                                       for p in people if p.has_role(Role.LEARNER)])
    form.assessor_id.choices = choices([
        (p.id, p.full_name + (" (trainee)" if p.is_trainee_assessor else ""))
        for p in people if p.has_role(Role.ASSESSOR)
    ])
    form.iqa_id.choices = choices([(0, "Not assigned yet")] + [
        (p.id, p.full_name) for p in people if p.has_role(Role.IQA)
    ])
    form.unit_id.choices = choices([(u.id, f"Unit {u.number}: {u.title} ({u.reference})")
                                    for u in list_units(db.session())])


def _person(user_id: int) -> User:
    return accounts.get_centre_person(db.session(), user_id, current_user)


def _optional_person(user_id: int | None) -> User | None:
    return _person(user_id) if user_id else None


@bp.route("/enrolments/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_enrolment() -> Any:
    form = EnrolmentForm()
    _fill_choices(form)
    status = 200
    if form.validate_on_submit():
        s = db.session()

        def enrol() -> Any:
            unit = s.get(Unit, form.unit_id.data)
            if unit is None:
                raise ValidationFailed("Choose a unit.", field="unit_id")
            return enrolments.enrol_learner(
                s, learner=_person(form.learner_id.data), unit=unit,
                assessor=_person(form.assessor_id.data),
                iqa=_optional_person(form.iqa_id.data), start_on=form.start_on.data,
                planned_end_on=form.planned_end_on.data, employer=form.employer.data,
                workplace=form.workplace.data, actor=current_user,
            )

        refused, enrolment = form_action(form, enrol)
        status = refused or 200
        if not refused:
            flash(f"{enrolment.learner.full_name} is enrolled on unit {enrolment.unit.number}.",
                  "success")
            return redirect(url_for("admin.enrolments_list"))
    elif form.is_submitted():
        status = 422
    return render_template("admin/enrolment_form.html", form=form, enrolment=None), status


@bp.route("/enrolments/<int:enrolment_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
@loads(enrolment=get_centre_enrolment)
def edit_enrolment(enrolment: Enrolment) -> Any:
    s = db.session()
    form = EnrolmentForm(obj=enrolment)
    _fill_choices(form)
    form.learner_id.choices = choices([(enrolment.learner_id, enrolment.learner.full_name)])
    form.unit_id.choices = choices([(enrolment.unit_id, enrolment.unit.title)])
    if not form.is_submitted():
        form.iqa_id.data = enrolment.iqa_id or 0
    status = 200
    if form.validate_on_submit():
        refused, _ = form_action(form, lambda: enrolments.update_enrolment(
            s, enrolment, actor=current_user,
            assessor=_person(form.assessor_id.data),
            iqa=_optional_person(form.iqa_id.data), start_on=form.start_on.data,
            planned_end_on=form.planned_end_on.data, employer=form.employer.data,
            workplace=form.workplace.data, status=form.status.data))
        status = refused or 200
        if not refused:
            flash(f"The enrolment of {enrolment.learner.full_name} is updated.", "success")
            return redirect(url_for("admin.enrolments_list"))
    elif form.is_submitted():
        status = 422
    return render_template("admin/enrolment_form.html", form=form, enrolment=enrolment), status


@bp.route("/centre", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def centre() -> Any:
    """The centre's own settings: the time zone its people read times in."""
    s = db.session()
    here = current_user.centre
    default = current_app.config["DEFAULT_TIMEZONE"]
    error = ""
    if request.method == "POST":  # the app checks every form's CSRF token first
        wanted = (request.form.get("timezone") or "").strip()
        if wanted and not valid_timezone(wanted):
            error = f"“{wanted[:64]}” is not a time zone we know. Choose one from the list."
        if error:
            return render_template("admin/centre.html", centre=here, zones=sorted(
                available_timezones()), default=default, error=error), 422
        before = here.timezone
        here.timezone = wanted or None
        if before != here.timezone:
            record_event(s, action="centre.settings", subject_type="centre", subject_id=here.id,
                         actor=current_user, detail={"timezone": here.timezone or default})
        s.commit()
        flash(f"Saved. Times now show in {here.timezone or default}.", "success")
        return redirect(url_for("admin.centre"))
    return render_template("admin/centre.html", centre=here, zones=sorted(available_timezones()),
                           default=default, error=error)
