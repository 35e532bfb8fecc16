"""Assessor and learner pages for reviews, decisions, countersigning, sign-off and history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from portfolio import db, notify
from portfolio.assessment import services
from portfolio.assessment.forms import ReviewForm, SignFields
from portfolio.assessment.queries import (
    audit_events_query,
    get_centre_decision,
    list_awaiting_countersignature,
    list_caseload,
    list_decisions,
    list_returned_to,
)
from portfolio.assessment.readiness import readiness as build
from portfolio.assessment.signing import verify_all
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import NotFound
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.pages import render_criterion, render_evidence
from portfolio.evidence.queries import get_evidence, list_evidence
from portfolio.evidence.services import set_mappings
from portfolio.ids import parse_ids
from portfolio.models import (
    AuditEvent,
    Criterion,
    CriterionDecision,
    Role,
    Signature,
    User,
)
from portfolio.paging import paginate
from portfolio.permissions import can_assess, can_countersign, can_view_audit
from portfolio.sampling.services import open_actions_for_owner
from portfolio.security import roles_required
from portfolio.viewkit import (  # noqa: F401
    confirmation_from,
    file_store,
    limits,
    loads,
    mapping_inputs,
    refuse,
    run_signed,
)

bp = Blueprint("assessment", __name__)
# A learner's audit history, newest first, a page at a time.
AUDIT_PAGE_SIZE = 100


SORTS = {
    "learner": lambda r: r.enrolment.learner.full_name.casefold(),
    "waiting": lambda r: -r.waiting,
    "oldest": lambda r: r.oldest_waiting_at or datetime.max.replace(tzinfo=UTC),
    "progress": lambda r: r.percent,
    "employer": lambda r: r.enrolment.employer.casefold(),
}


@bp.route("/caseload")
@roles_required(Role.ASSESSOR)
def caseload() -> Any:
    every = list_caseload(db.session(), current_user)
    employers = sorted({r.enrolment.employer for r in every})
    rows = list(every)
    query = (request.args.get("q") or "").strip().casefold()
    employer = request.args.get("employer") or ""
    if query:
        rows = [r for r in rows if query in r.enrolment.learner.full_name.casefold()]
    if employer:
        rows = [r for r in rows if r.enrolment.employer == employer]
    if request.args.get("waiting"):
        rows = [r for r in rows if r.waiting]
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "oldest"
    rows.sort(key=SORTS[sort])
    return render_template("assessment/caseload.html", rows=rows, sort=sort, q=query,
                           employer=employer, employers=employers,
                           waiting_only=bool(request.args.get("waiting")),
                           now=datetime.now(UTC), today=datetime.now(UTC).date(),
                           iqa_actions=open_actions_for_owner(db.session(), current_user))


def _assessed_enrolment(enrolment_id: int) -> Any:
    enrolment = get_enrolment(db.session(), enrolment_id, current_user)
    if not can_assess(current_user, enrolment):
        abort(403)
    return enrolment


@bp.route("/enrolments/<int:enrolment_id>/review")
@login_required
def queue(enrolment_id: int) -> Any:
    return render_queue(_assessed_enrolment(enrolment_id))


def render_queue(enrolment: Any) -> Any:
    rows = list_evidence(db.session(), enrolment.id)
    waiting = sorted([r for r in rows if r.status == "submitted"], key=lambda r: r.id)
    return render_template("assessment/queue.html", enrolment=enrolment, waiting=waiting,
                           others=[r for r in rows if r.status != "submitted"], kinds=KINDS)


@bp.route("/evidence/<int:evidence_id>/record", methods=["POST"])
@login_required
def record(evidence_id: int) -> Any:
    """The assessor signs their own record (an observation): accepted and counted at once."""
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    refused, _ = run_signed(lambda: services.record_by_assessor(
        s, evidence, actor=current_user, confirmation=confirmation_from(request.form),
        wanted=mapping_inputs(request.form) if request.form.get("mapping") == "1" else None,
        **limits()), lambda: render_evidence(evidence.id, posted=True))
    if refused:
        return refused
    flash("Recorded and signed. It counts now, and the learner has been told.", "success")
    return redirect(url_for("evidence.detail", evidence_id=evidence.id))


@bp.route("/evidence/<int:evidence_id>/review", methods=["POST"])
@login_required
def review(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, current_user)
    form = ReviewForm()
    form.validate()
    target = url_for("evidence.detail", evidence_id=evidence.id)
    with_mapping = request.form.get("mapping") == "1"

    def record() -> Any:
        # The ticks and the review are one form: both are saved, or neither is.
        with s.begin_nested():
            if with_mapping:

                set_mappings(s, evidence, actor=current_user,
                             wanted=mapping_inputs(request.form))
            return services.review_evidence(
                s, evidence, actor=current_user, outcome=form.outcome.data or "",
                feedback_md=form.feedback_md.data or "",
                varcs={k: getattr(form, k).data for k in services.VARCS},
                expected_version=int(form.expected_version.data or 0))

    refused, _ = run_signed(record, lambda: render_evidence(evidence.id, posted=True))
    if refused:
        return refused
    learner = evidence.enrolment.learner
    title = services.current_version(evidence).title
    if evidence.status == "referred":
        link = url_for("evidence.detail", evidence_id=evidence.id, _external=True)
        notify.queue(notify.Message(
            (learner.email,), f"Evidence referred back: {title}",
            f"Your assessor referred back “{title}” with feedback.\n\nRead it and revise: "
            f"{link}\n"))
        flash("Referred back. The learner has been told by email.", "success")
    else:
        flash("Accepted.", "success")
    nxt = request.form.get("next")
    return redirect(nxt if nxt and nxt.startswith("/") and not nxt.startswith("//") else target)


@bp.route("/enrolments/<int:enrolment_id>/criteria/<int:criterion_id>/decide", methods=["POST"])
@login_required
def decide(enrolment_id: int, criterion_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    criterion = s.get(Criterion, criterion_id)
    if criterion is None or criterion.unit_id != enrolment.unit_id:
        raise NotFound("No such criterion in this unit.")
    target = url_for("evidence.criterion", enrolment_id=enrolment.id, criterion_id=criterion.id)
    ids = parse_ids(request.form.getlist("evidence_ids"))
    refused, decision = run_signed(lambda: services.decide_criterion(
        s, enrolment, criterion, actor=current_user, evidence_ids=ids,
        note_md=request.form.get("note_md", "")[:20_000],
        confirmation=confirmation_from(request.form),
        expected_state=request.form.get("expected_state", ""), **limits()),
        lambda: render_criterion(enrolment.id, criterion.id))
    if refused:
        return refused
    if decision.status == "met":
        flash(f"Signed: {criterion.number} is met.", "success")
    else:
        flash(f"Signed. {criterion.number} now waits for a qualified assessor's "
              "countersignature.", "success")
    return redirect(target)


@bp.route("/countersign")
@roles_required(Role.ASSESSOR)
def countersign_queue() -> Any:
    return _countersign_page()


def _countersign_page() -> Any:
    decisions = list_awaiting_countersignature(db.session(), current_user.centre_id)
    # The page offers a form only where the same rule the service applies allows it.
    signable = {d.id for d in decisions if can_countersign(
        current_user, d.enrolment.learner.centre_id, d.decided_by_id, d.enrolment.learner_id,
        current_user.assessor_status, d.enrolment.iqa_id)}
    returned = [(d, services.returned_decision(db.session(), d))
                for d in list_returned_to(db.session(), current_user.id)]
    qualified = current_user.assessor_status == "qualified"
    # Why a qualified assessor may not countersign some: they are that learner's IQA.
    as_iqa = {d.id for d in decisions if qualified and d.enrolment.iqa_id == current_user.id}
    return render_template("assessment/countersign.html", decisions=decisions, returned=returned,
                           can_sign=qualified, signable=signable, as_iqa=as_iqa,
                           sign_form=SignFields())


@bp.route("/decisions/<int:decision_id>/countersign", methods=["POST"])
@roles_required(Role.ASSESSOR)
@loads(decision=get_centre_decision)
def countersign(decision: CriterionDecision) -> Any:
    s = db.session()
    target = url_for("assessment.countersign_queue")
    refused, _ = run_signed(lambda: services.countersign_decision(
        s, decision, actor=current_user, confirmation=confirmation_from(request.form),
        **limits()), _countersign_page)
    if refused:
        return refused
    flash(f"Countersigned: {decision.criterion.number} for "
          f"{decision.enrolment.learner.full_name} is now met.", "success")
    return redirect(target)


@bp.route("/enrolments/<int:enrolment_id>/sign-off")
@login_required
def sign_off(enrolment_id: int) -> Any:
    return _sign_off_page(enrolment_id)


def _sign_off_page(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    verdicts = {v.signature_id: v for v in verify_all(s, [enrolment.id], store=file_store())}

    signatures = list(s.query(Signature).filter(Signature.enrolment_id == enrolment.id)
                      .order_by(Signature.id))
    return render_template(
        "assessment/sign_off.html", enrolment=enrolment,
        decisions=list_decisions(s, enrolment.id), signatures=signatures, verdicts=verdicts,
        blockers=services.unit_readiness(s, enrolment),
        declaration=services.unit_declaration(s, enrolment),
        signoff=services.unit_signoff(s, enrolment), cosign=services.unit_cosign(s, enrolment),
        is_learner=current_user.id == enrolment.learner_id,
        is_assessor=can_assess(current_user, enrolment), sign_form=SignFields())


def _sign_action(enrolment_id: int, action: Any, done: str) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    target = url_for("assessment.sign_off", enrolment_id=enrolment.id)
    refused, _ = run_signed(lambda: action(
        s, enrolment, actor=current_user, confirmation=confirmation_from(request.form),
        **limits()), lambda: _sign_off_page(enrolment.id))
    if refused:
        return refused
    flash(done, "success")
    return redirect(target)


@bp.route("/enrolments/<int:enrolment_id>/declaration", methods=["POST"])
@login_required
def declare(enrolment_id: int) -> Any:
    return _sign_action(enrolment_id, services.sign_unit_declaration,
                        "Declaration signed. Your assessor can now sign the unit off.")


@bp.route("/enrolments/<int:enrolment_id>/sign-off", methods=["POST"])
@login_required
def sign_off_unit(enrolment_id: int) -> Any:
    return _sign_action(enrolment_id, services.sign_off_unit,
                        "Unit signed off. The learner is asked to co-sign.")


@bp.route("/enrolments/<int:enrolment_id>/cosign", methods=["POST"])
@login_required
def cosign(enrolment_id: int) -> Any:
    return _sign_action(enrolment_id, services.cosign_unit,
                        "Co-signed. The unit is complete.")


@bp.route("/enrolments/<int:enrolment_id>/readiness")
@login_required
def readiness(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    return render_template("assessment/readiness.html", enrolment=enrolment,
                           report=build(s, enrolment, date.today()))


@bp.route("/enrolments/<int:enrolment_id>/audit")
@login_required
def audit(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    if not can_view_audit(current_user, enrolment):
        abort(403)
    page = paginate(s, audit_events_query(enrolment.learner_id), (AuditEvent.seq,),
                    size=AUDIT_PAGE_SIZE, descending=True)
    events = page.items
    actors = {u.id: u.full_name for u in s.query(User).filter(
        User.id.in_({e.actor_id for e in events if e.actor_id}))}
    return render_template("assessment/audit.html", enrolment=enrolment, events=events,
                           actors=actors, page=page)
