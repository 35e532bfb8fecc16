"""Routes on the assessment blueprint for batch work (imported at the end of views.py).

Signing a whole unit one criterion at a time cost an assessor about 68 clicks and 34 typed
fields. Here every criterion that is ready is listed, ticked, with the evidence it would cite,
and one password and one typed name sign them all; each still gets its own signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portfolio import db
from portfolio.assessment import services
from portfolio.assessment.forms import SignFields
from portfolio.assessment.signing import live_decisions
from portfolio.assessment.views import _assessed_enrolment, bp, render_queue
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import PermissionDenied
from portfolio.evidence.coverage import MappedItem, compute_coverage
from portfolio.evidence.pages import render_index
from portfolio.models import Criterion, Enrolment, Evidence
from portfolio.viewkit import confirmation_from, limits, run_signed


@dataclass(frozen=True)
class Ready:
    criterion_id: int
    number: str
    text: str
    items: list[MappedItem]
    state: str  # the token over the cited versions, to refuse a stale form


def ready_to_decide(enrolment: Enrolment) -> list[Ready]:
    """Criteria with no standing decision whose accepted, counting evidence is enough."""
    s = db.session()
    decided = {d.criterion_id for d in live_decisions(s, enrolment.id)}
    ready = []
    for c in compute_coverage(s, enrolment, date.today()).criteria:
        usable = [i for i in c.items if i.status == "accepted" and i.counts]
        if c.criterion_id in decided or not usable or len(usable) < c.required:
            continue
        ready.append(Ready(c.criterion_id, c.number, c.text, usable,
                           services.decision_evidence_state(
                               s, enrolment, [i.evidence_id for i in usable])))
    return ready


def _page(enrolment: Enrolment, ticked: set[int] | None = None, note: str = "") -> Any:
    ready = ready_to_decide(enrolment)
    return render_template(
        "assessment/batch_decide.html", enrolment=enrolment, ready=ready, note=note,
        ticked=ticked if ticked is not None else {r.criterion_id for r in ready},
        sign_form=SignFields())


@bp.route("/enrolments/<int:enrolment_id>/decide")
@login_required
def batch_decide(enrolment_id: int) -> Any:
    return _page(_assessed_enrolment(enrolment_id))


@bp.route("/enrolments/<int:enrolment_id>/decide", methods=["POST"])
@login_required
def batch_decide_sign(enrolment_id: int) -> Any:
    enrolment = _assessed_enrolment(enrolment_id)
    s = db.session()
    ids = []
    for raw in request.form.getlist("criterion_ids")[:200]:
        if raw.isascii() and raw.isdigit() and len(raw) < 12:
            ids.append(int(raw))
    ready = {r.criterion_id: r for r in ready_to_decide(enrolment)}
    batch = []
    for cid in dict.fromkeys(ids):
        criterion = s.get(Criterion, cid)
        if criterion is None or criterion.unit_id != enrolment.unit_id:
            continue
        entry = ready.get(cid)
        # A criterion that is no longer ready is still passed on, with the state the page
        # was drawn from, so the service refuses it by name rather than skipping it silently.
        batch.append(services.BatchItem(
            criterion, [i.evidence_id for i in entry.items] if entry else [],
            request.form.get(f"state-{cid}", "")))
    note = request.form.get("note_md", "")[:20_000]
    refused, decisions = run_signed(lambda: services.decide_criteria(
        s, enrolment, batch, actor=current_user, note_md=note,
        confirmation=confirmation_from(request.form), **limits()),
        lambda: _page(enrolment, set(ids), note))
    if refused:
        return refused
    numbers = ", ".join(d.criterion.number for d in decisions)
    waiting = [d for d in decisions if d.status == "awaiting_countersignature"]
    flash(f"Signed {len(decisions)} decision{'s' if len(decisions) != 1 else ''}: {numbers}."
          + (" They now wait for a qualified assessor's countersignature." if waiting else ""),
          "success")
    return redirect(url_for("assessment.sign_off", enrolment_id=enrolment.id))


@bp.route("/enrolments/<int:enrolment_id>/review", methods=["POST"])
@login_required
def review_batch(enrolment_id: int) -> Any:
    """Accept or refer back the ticked items of the review queue with one comment."""
    enrolment = _assessed_enrolment(enrolment_id)
    s = db.session()
    items = []
    for raw in request.form.getlist("evidence_ids")[:200]:
        if not (raw.isascii() and raw.isdigit() and len(raw) < 12):
            continue
        evidence = s.get(Evidence, int(raw))
        if evidence is None or evidence.enrolment_id != enrolment.id:
            continue
        version = request.form.get(f"version-{evidence.id}", "")
        items.append((evidence, int(version) if version.isascii() and version.isdigit()
                      and len(version) < 9 else 0))
    outcome = request.form.get("outcome", "")
    refused, reviews = run_signed(lambda: services.review_many(
        s, items, actor=current_user, outcome=outcome,
        feedback_md=request.form.get("feedback_md", "")[:20_000],
        varcs={k: bool(request.form.get(k)) for k in services.VARCS}),
        lambda: render_queue(enrolment))
    if refused:
        return refused
    word = "Accepted" if outcome == "accepted" else "Referred back"
    flash(f"{word}: {len(reviews)} item{'s' if len(reviews) != 1 else ''}. The learner is "
          "notified.", "success")
    return redirect(url_for("assessment.queue", enrolment_id=enrolment.id))


@bp.route("/enrolments/<int:enrolment_id>/evidence/submit", methods=["POST"])
@login_required
def submit_batch(enrolment_id: int) -> Any:
    """The learner submits the ticked drafts under one signed declaration each, signed once."""
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, current_user)
    if current_user.id != enrolment.learner_id:
        raise PermissionDenied("Only the learner submits their own evidence this way.")
    items = []
    for raw in dict.fromkeys(request.form.getlist("evidence_ids")[:200]):
        if raw.isascii() and raw.isdigit() and len(raw) < 12:
            evidence = s.get(Evidence, int(raw))
            if evidence is not None and evidence.enrolment_id == enrolment.id:
                items.append(evidence)
    refused, signatures = run_signed(lambda: services.submit_many(
        s, items, actor=current_user, confirmation=confirmation_from(request.form),
        **limits()), lambda: render_index(enrolment))
    if refused:
        return refused
    flash(f"Submitted {len(signatures)} item{'s' if len(signatures) != 1 else ''}, each with "
          "your signed declaration. Your assessor can now review them.", "success")
    return redirect(url_for("evidence.index", enrolment_id=enrolment.id))
