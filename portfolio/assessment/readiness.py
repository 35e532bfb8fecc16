"""Portfolio readiness: everything that still stands between a learner and a certificate claim.

Every line names who can clear it and how, with a link for whoever is looking if they are that
person. Things nobody can act on are not listed: a signature that ended because the evidence
was revised, or a decision superseded, is history (on the history page), not a task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.assessment.services import (
    unit_cosign,
    unit_declaration,
    unit_readiness,
    unit_signoff,
)
from portfolio.assessment.signing import live_decisions, verify_all
from portfolio.evidence.coverage import compute_coverage
from portfolio.models import (
    ActionStatus,
    Enrolment,
    Role,
    User,
    UserRole,
    WitnessRequest,
    WitnessStatus,
)
from portfolio.permissions import can_countersign
from portfolio.sampling.services import open_actions_for_enrolment


@dataclass(frozen=True)
class Line:
    """One thing still open: what, who can clear it, and how."""
    text: str
    who: str
    how: str
    url: str = ""
    actors: frozenset[int] = frozenset()  # whoever may follow the link to do it
    details: tuple[str, ...] = ()

    def link_for(self, user_id: int) -> str:
        return self.url if user_id in self.actors else ""


@dataclass
class Readiness:
    open_criteria: list[tuple[str, str, Line]] = field(default_factory=list)
    declarations: list[Line] = field(default_factory=list)
    signatures: list[Line] = field(default_factory=list)
    witnesses: list[Line] = field(default_factory=list)
    iqa_actions: list[Line] = field(default_factory=list)
    sign_off: Line | None = None

    @property
    def ready(self) -> bool:
        return not (self.open_criteria or self.declarations or self.signatures
                    or self.witnesses or self.iqa_actions or self.sign_off)


def _named(user: User | None, role: str) -> str:
    return f"{user.full_name} ({role})" if user is not None else role


def _countersigners(session: Session, enrolment: Enrolment, decided_by_id: int) -> frozenset[int]:
    centre_id = enrolment.learner.centre_id
    return frozenset(u.id for u in session.scalars(select(User).where(
        User.centre_id == centre_id, User.assessor_status == "qualified"))
        if can_countersign(u, centre_id, decided_by_id, enrolment.learner_id,
                           u.assessor_status, enrolment.iqa_id))


def _criterion_line(session: Session, enrolment: Enrolment, c, decisions) -> Line:  # noqa: ANN001
    learner = enrolment.learner
    assessor = enrolment.assessor
    page = url_for("evidence.criterion", enrolment_id=enrolment.id, criterion_id=c.criterion_id)
    reasons = tuple(r.message for r in c.reasons)
    codes = {r.code for r in c.reasons}
    first_message = c.reasons[0].message if c.reasons else ""
    if "awaiting_countersignature" in codes:
        decision = decisions[c.criterion_id]
        return Line(first_message, "a qualified assessor at the centre", "Countersign it",
                    url_for("assessment.countersign_queue"),
                    _countersigners(session, enrolment, decision.decided_by_id), reasons)
    if codes & {"decision_invalidated", "reopened"} and c.status == "evidenced":
        return Line(first_message, _named(assessor, "assessor"), "Decide it again",
                    url_for("assessment.batch_decide", enrolment_id=enrolment.id),
                    frozenset({assessor.id}), reasons)
    if c.status == "evidenced":
        if any("has still to review" in r for r in reasons):
            return Line(first_message, _named(assessor, "assessor"), "Review the evidence",
                        url_for("assessment.queue", enrolment_id=enrolment.id),
                        frozenset({assessor.id}), reasons)
        return Line(first_message, _named(assessor, "assessor"), "Decide it",
                    url_for("assessment.batch_decide", enrolment_id=enrolment.id),
                    frozenset({assessor.id}), reasons)
    if codes & {"referred"}:
        how = "Revise the evidence that was referred back"
    elif codes & {"not_submitted"}:
        how = "Submit the draft evidence"
    else:
        how = "Add evidence for it"
    return Line(first_message or "Not met yet.", _named(learner, "learner"), how,
                page, frozenset({learner.id}), reasons)


def readiness(session: Session, enrolment: Enrolment, today: date) -> Readiness:
    """Return what is still open for this enrolment, grouped as a checklist."""
    report = Readiness()
    learner, assessor = enrolment.learner, enrolment.assessor
    decisions = {d.criterion_id: d for d in live_decisions(session, enrolment.id)}
    coverage = compute_coverage(session, enrolment, today)
    for c in coverage.criteria:
        if c.status != "met":
            report.open_criteria.append(
                (c.number, c.text, _criterion_line(session, enrolment, c, decisions)))

    if unit_declaration(session, enrolment) is None:
        report.declarations.append(Line(
            "The learner has not signed a current unit declaration (or evidence changed since "
            "they did).", _named(learner, "learner"),
            "Sign the unit declaration", url_for("assessment.sign_off",
                                                 enrolment_id=enrolment.id),
            frozenset({learner.id})))

    # A broken signature means a signed record changed outside the app; only the centre can
    # investigate it. An ended signature that a live decision still rests on needs a new
    # decision. Every other ended signature is history.
    admins = frozenset(session.scalars(
        select(User.id).join(UserRole, UserRole.user_id == User.id)
        .where(User.centre_id == learner.centre_id, UserRole.role == Role.ADMIN.value)))
    relied = {d.signature_id: d for d in decisions.values()}
    relied.update({d.countersignature_id: d for d in decisions.values()
                   if d.countersignature_id})
    for verdict in verify_all(session, [enrolment.id]):
        if verdict.state == "broken":
            report.signatures.append(Line(
                f"A signed record was changed outside the app: {verdict.reason}.",
                "the centre's administrator",
                "Check the audit trail (portfolio audit verify) and restore the record from a "
                "backup; tell the IQA", url_for("assessment.audit", enrolment_id=enrolment.id),
                admins))
        elif verdict.state == "invalidated" and verdict.signature_id in relied:
            decision = relied[verdict.signature_id]
            report.signatures.append(Line(
                f"The decision on {decision.criterion.number} rests on a signature that no "
                f"longer holds: {verdict.reason}.", _named(assessor, "assessor"),
                "Decide it again", url_for("evidence.criterion", enrolment_id=enrolment.id,
                                           criterion_id=decision.criterion_id),
                frozenset({assessor.id})))

    witness_page = url_for("witness.index", enrolment_id=enrolment.id)
    requests = list(session.scalars(select(WitnessRequest).where(
        WitnessRequest.enrolment_id == enrolment.id).order_by(WitnessRequest.id)))
    still_open = {c.criterion_id for c in coverage.criteria if c.status in ("gap", "no_evidence")}
    for request in requests:
        if request.status == WitnessStatus.DECLINED and (
                not set(request.criterion_ids) & still_open
                or any(r.id > request.id
                       and r.status in (WitnessStatus.PENDING, WitnessStatus.SIGNED)
                       for r in requests)):
            continue  # someone else was asked since, or its criteria are evidenced anyway
        if request.status not in (WitnessStatus.PENDING, WitnessStatus.DECLINED):
            continue
        who = f"{learner.full_name} (learner) or {assessor.full_name} (assessor)"
        both = frozenset({learner.id, assessor.id})
        if request.status == WitnessStatus.PENDING:
            expired = request.expires_at.date() < today
            report.witnesses.append(Line(
                f"Testimony from {request.witness_name} "
                + (f"was never given: the link expired on {request.expires_at:%d %b %Y}."
                   if expired else
                   f"is still awaited (link valid until {request.expires_at:%d %b %Y})."),
                who, "Send the link again, or cancel the request", witness_page, both))
        else:
            report.witnesses.append(Line(
                f"{request.witness_name} declined: “{request.decline_reason}”.", who,
                "Ask someone else, or find other evidence for its criteria", witness_page,
                both))

    for action in open_actions_for_enrolment(session, enrolment.id):
        overdue = " (overdue)" if action.due_on < today else ""
        text = f"IQA action due {action.due_on:%d %b %Y}{overdue}: {action.description}"
        page = url_for("sampling.sample", sample_id=action.sample_id)
        if action.status == ActionStatus.RESPONDED:
            iqa = session.get(User, action.sample.iqa_id)
            report.iqa_actions.append(Line(text, _named(iqa, "IQA"),
                                           "Check the response and close the action", page,
                                           frozenset({action.sample.iqa_id})))
        else:
            how = ("Acknowledge it, do it, and say what you did"
                   if action.status == ActionStatus.OPEN else "Do it and say what you did")
            report.iqa_actions.append(Line(text, _named(action.owner, "action owner"), how,
                                           page, frozenset({action.owner_id})))

    sign_off_page = url_for("assessment.sign_off", enrolment_id=enrolment.id)
    if unit_cosign(session, enrolment) is not None:
        report.sign_off = None
    elif unit_signoff(session, enrolment) is not None:
        report.sign_off = Line("Signed off by the assessor; the learner has not co-signed yet.",
                               _named(learner, "learner"), "Co-sign the unit", sign_off_page,
                               frozenset({learner.id}))
    elif not unit_readiness(session, enrolment):
        report.sign_off = Line("Everything is met and declared: the unit can be signed off.",
                               _named(assessor, "assessor"), "Sign the unit off", sign_off_page,
                               frozenset({assessor.id}))
    else:
        report.sign_off = Line("Not signed off yet: the assessor signs the unit off once the "
                               "items above are cleared.", _named(assessor, "assessor"),
                               "Nothing to do until then")
    return report
