"""Asking for testimonies (learner, assessor) and the witness's single-use page (no account)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from portfolio import db, notify
from portfolio.admin.forms import choices
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import ValidationFailed
from portfolio.models import Criterion, WitnessRequest
from portfolio.permissions import can_add_evidence
from portfolio.security import client_address, csrf
from portfolio.viewkit import form_action, loads
from portfolio.witness import services, states
from portfolio.witness.forms import DeclineForm, RequestForm, TestimonyForm

bp = Blueprint("witness", __name__)


def _link_days() -> int:
    return int(current_app.config["WITNESS_LINK_DAYS"])


def _criteria_choices(form: RequestForm, unit_id: int) -> list[Criterion]:
    criteria = list(db.session().scalars(select(Criterion).where(
        Criterion.unit_id == unit_id, Criterion.is_retired.is_(False))
        .order_by(Criterion.position)))
    form.criterion_ids.choices = choices([(c.id, f"{c.number} {c.text}") for c in criteria])
    # Criteria whose accepted methods leave out a witness: shown, but not offered (defect 8).
    form.criterion_ids.not_for_witness = services.not_for_witness(  # type: ignore[attr-defined]
        db.session(), [c.id for c in criteria])
    return criteria


def _input(form: RequestForm) -> services.RequestInput:
    return services.RequestInput(
        witness_name=form.witness_name.data or "", witness_email=form.witness_email.data or "",
        witness_role=form.witness_role.data or "", organisation=form.organisation.data or "",
        relationship=form.relationship.data or "", activity=form.activity.data or "",
        activity_on=form.activity_on.data, activity_place=form.activity_place.data or "",
        criterion_ids=list(form.criterion_ids.data or []), is_expert=bool(form.is_expert.data),
        expert_competence=form.expert_competence.data or "", draft_md=form.draft_md.data or "")


def _email_link(req: WitnessRequest, raw: str) -> None:
    link = url_for("witness.respond", token=raw, _external=True)
    learner = req.enrolment.learner.full_name
    centre = req.enrolment.learner.centre.name
    notify.queue(notify.Message(
        (req.witness_email,), f"{learner} asks you to confirm what you saw at work",
        f"Dear {req.witness_name},\n\n{learner}, a learner at {centre}, has asked you to "
        f"confirm, in your own words, what you saw them do at work:\n\n  {req.activity}\n  "
        f"({req.activity_on:%d %B %Y}, {req.activity_place})\n\n"
        f"This is for their qualification. It takes a few minutes and needs no account. "
        f"Open this link (it works once, until {req.expires_at:%d %B %Y}):\n\n{link}\n\n"
        "If you did not see this, or you are related to the learner, you can decline on the "
        "same page.\n"))


def _list_page(enrolment: Any, form: RequestForm, status: int = 200) -> Any:
    s = db.session()
    requests = list(s.scalars(select(WitnessRequest).where(
        WitnessRequest.enrolment_id == enrolment.id).order_by(WitnessRequest.id.desc())))
    unit_criteria = len(form.criterion_ids.choices or [])
    numbers = {c.id: c.number for c in s.scalars(select(Criterion).where(
        Criterion.unit_id == enrolment.unit_id))}
    can_request = can_add_evidence(current_user, enrolment, services.ADDED_BY)
    return render_template(
        "witness/index.html", enrolment=enrolment, form=form, requests=requests,
        numbers=numbers, can_request=can_request,
        # Send again, correct and cancel: what this person may do to each request now.
        changeable={r.id for r in requests
                    if can_request and "cancel" in states.MACHINE.possible(r.status)},
        warnings={r.id: services.warnings_for(s, r, unit_criteria) for r in requests},
        recorded_warnings=services.recorded_testimony_warnings(s, enrolment),
        paper=services.paper_testimonies(s, enrolment),
        signed=[r for r in requests if r.status == states.SIGNED]), status


@bp.route("/enrolments/<int:enrolment_id>/witnesses", methods=["GET", "POST"])
@login_required
def index(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    form = RequestForm()
    _criteria_choices(form, enrolment.unit_id)
    if request.method == "POST":
        if not can_add_evidence(current_user, enrolment, services.ADDED_BY):
            abort(403)
        if form.validate_on_submit():
            def ask() -> Any:
                req, raw = services.request_testimony(
                    s, enrolment, actor=current_user, data=_input(form), today=date.today(),
                    link_days=_link_days())
                _email_link(req, raw)
                return req

            refused, req = form_action(form, ask, statuses=(422,))
            if refused:
                return _list_page(enrolment, form, refused)
            flash(f"Request sent to {req.witness_name}.", "success")
            return redirect(url_for("witness.index", enrolment_id=enrolment.id))
        return _list_page(enrolment, form, 422)
    return _list_page(enrolment, form)


@bp.route("/witness-requests/<int:request_id>/resend", methods=["POST"])
@login_required
@loads(req=services.get_request, by="request_id")
def resend(req: WitnessRequest) -> Any:
    s = db.session()
    try:
        raw = services.resend(s, req, actor=current_user, link_days=_link_days())
    except ValidationFailed as exc:
        s.rollback()
        flash(f"Not sent again: {exc.message} Use \u201cCorrect\u201d to change "
              "the address.", "error")
        return redirect(url_for("witness.index", enrolment_id=req.enrolment_id))
    s.commit()
    _email_link(req, raw)
    flash(f"Sent again to {req.witness_name}; the earlier link no longer works.", "success")
    return redirect(url_for("witness.index", enrolment_id=req.enrolment_id))


@bp.route("/witness-requests/<int:request_id>/cancel", methods=["POST"])
@login_required
@loads(req=services.get_request, by="request_id")
def cancel(req: WitnessRequest) -> Any:
    s = db.session()
    services.cancel(s, req, actor=current_user)
    s.commit()
    flash(f"Request to {req.witness_name} cancelled; its link no longer works.", "success")
    return redirect(url_for("witness.index", enrolment_id=req.enrolment_id))


@bp.route("/witness-requests/<int:request_id>/replace", methods=["GET", "POST"])
@login_required
@loads(req=services.get_request, by="request_id")
def replace(req: WitnessRequest) -> Any:
    s = db.session()
    if not can_add_evidence(current_user, req.enrolment, services.ADDED_BY):
        abort(403)
    form = RequestForm(obj=None if request.method == "POST" else req)
    _criteria_choices(form, req.enrolment.unit_id)
    status = 200
    if form.validate_on_submit():
        def correct() -> Any:
            new, raw = services.replace(s, req, actor=current_user, data=_input(form),
                                        today=date.today(), link_days=_link_days())
            _email_link(new, raw)
            return new

        refused, new = form_action(form, correct, statuses=(422,))
        status = refused or 200
        if not refused:
            flash(f"Replaced: a corrected request went to {new.witness_name}.", "success")
            return redirect(url_for("witness.index", enrolment_id=req.enrolment_id))
    elif form.is_submitted():
        status = 422
    return render_template("witness/replace.html", form=form, req=req), status


# --- the witness's own page: no account, no navigation, nothing else of the app ------------

def _public(body: Any, status: int = 200) -> Any:
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _limited() -> bool:
    s = db.session()
    over = services.rate_limited(s, f"witness:{client_address()}",
                                 limit=int(current_app.config["WITNESS_RATE_LIMIT"]),
                                 window_minutes=10)
    s.commit()
    return over


def _unusable(exc: services.LinkUnusable) -> Any:
    return _public(render_template("witness/unusable.html", message=exc.message), exc.status)


def _witness_page(req: WitnessRequest, form: TestimonyForm, status: int = 200) -> Any:
    return _public(render_template(
        "witness/respond.html", req=req, form=form, decline_form=DeclineForm(),
        centre=req.enrolment.learner.centre.name,
        criteria=services.criteria_of(db.session(), req)), status)


@bp.route("/w/<token>", methods=["GET", "POST"])
def respond(token: str) -> Any:
    if _limited():
        return _public(render_template("witness/unusable.html", message=(
            "Too many attempts from your connection. Wait ten minutes and try again.")), 429)
    s = db.session()
    try:
        req = services.open_link(s, token)
    except services.LinkUnusable as exc:
        return _unusable(exc)
    form = TestimonyForm()
    if request.method == "GET":
        form.testimony_md.data = req.draft_md
        form.relationship.data = req.relationship
        return _witness_page(req, form)
    if not form.validate_on_submit():
        return _witness_page(req, form, 422)
    testimony = services.TestimonyInput(
        testimony_md=form.testimony_md.data or "", relationship=form.relationship.data or "",
        related=form.related.data == "yes", no_customer_data=bool(form.no_customer_data.data),
        typed_name=form.typed_name.data or "")
    refused, _ = form_action(form, lambda: services.sign_testimony(s, token, testimony),
                             statuses=(422,))
    if refused:
        return _witness_page(services.open_link(s, token), form, refused)
    return _public(render_template("witness/thanks.html", name=req.witness_name,
                                   learner=req.enrolment.learner.full_name))


@bp.route("/w/<token>/decline", methods=["POST"])
def decline(token: str) -> Any:
    if _limited():
        return _public(render_template("witness/unusable.html", message=(
            "Too many attempts from your connection. Wait ten minutes and try again.")), 429)
    s = db.session()
    form = DeclineForm()
    form.validate()
    try:
        req = services.decline(s, token, form.reason.data or "")
    except services.LinkUnusable as exc:
        return _unusable(exc)
    s.commit()
    return _public(render_template("witness/thanks.html", name=req.witness_name,
                                   learner=req.enrolment.learner.full_name, declined=True))


__all__ = ["bp", "csrf"]
