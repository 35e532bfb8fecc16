"""Assessor reads: the caseload (fixed queries whatever its size), review queues, history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from portfolio.db import UTCDateTime
from portfolio.errors import NotFound
from portfolio.models import (
    AuditEvent,
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceReview,
    User,
)
from portfolio.permissions import can_read_for_countersign


def get_centre_decision(session: Session, decision_id: int, user: User) -> CriterionDecision:
    """A criterion decision on a learner of the user's centre; NotFound otherwise (other
    centres' ids look like missing ones). Who may act on it is the service's check."""
    decision = session.get(CriterionDecision, decision_id)
    if decision is None or decision.enrolment.learner.centre_id != user.centre_id:
        raise NotFound("No such decision.")
    return decision


def get_decision_to_countersign(session: Session, decision_id: int,
                                user: User) -> CriterionDecision:
    """The decision if the user may read it to countersign it; NotFound otherwise (a decision
    already countersigned, or not theirs to sign, does not exist for them)."""
    decision = session.get(CriterionDecision, decision_id)
    if decision is None or not can_read_for_countersign(
            user, decision.status, decision.enrolment.learner.centre_id,
            decision.decided_by_id, decision.enrolment.learner_id,
            user.assessor_status, decision.enrolment.iqa_id):
        raise NotFound("No such decision waiting for your countersignature.")
    return decision


@dataclass(frozen=True)
class CaseloadRow:
    enrolment: Enrolment
    total: int
    met: int
    awaiting_countersignature: int
    waiting: int
    oldest_waiting_at: datetime | None

    @property
    def percent(self) -> int:
        return round(100 * self.met / self.total) if self.total else 0


def list_caseload(session: Session, assessor: User) -> list[CaseloadRow]:
    """Return every enrolment assigned to the assessor with progress and waiting work."""
    enrolments = list(session.scalars(
        select(Enrolment).where(Enrolment.assessor_id == assessor.id)
        .options(joinedload(Enrolment.learner), joinedload(Enrolment.unit))
        .order_by(Enrolment.id)))
    ids = [e.id for e in enrolments]
    if not ids:
        return []
    waiting = {row.enrolment_id: (row.n, row.oldest) for row in session.execute(
        select(Evidence.enrolment_id, func.count(Evidence.id).label("n"),
               func.min(Evidence.submitted_at, type_=UTCDateTime).label("oldest"))
        .where(Evidence.enrolment_id.in_(ids), Evidence.status == "submitted")
        .group_by(Evidence.enrolment_id))}
    decided: dict[tuple[int, str], int] = {
        (row.enrolment_id, row.status): row.n for row in session.execute(
            select(CriterionDecision.enrolment_id, CriterionDecision.status,
                   func.count(CriterionDecision.id).label("n"))
            .where(CriterionDecision.enrolment_id.in_(ids),
                   CriterionDecision.status.in_(("met", "awaiting_countersignature")))
            .group_by(CriterionDecision.enrolment_id, CriterionDecision.status))}
    totals = dict(session.execute(
        select(Criterion.unit_id, func.count(Criterion.id))
        .where(Criterion.unit_id.in_({e.unit_id for e in enrolments}),
               Criterion.is_retired.is_(False))
        .group_by(Criterion.unit_id)).all())
    rows = []
    for e in enrolments:
        count, oldest = waiting.get(e.id, (0, None))
        rows.append(CaseloadRow(e, totals.get(e.unit_id, 0), decided.get((e.id, "met"), 0),
                                decided.get((e.id, "awaiting_countersignature"), 0),
                                count, oldest))
    return rows


def list_reviews(session: Session, evidence_id: int) -> list[EvidenceReview]:
    """Return an evidence item's reviews, newest first."""
    return list(session.scalars(
        select(EvidenceReview).where(EvidenceReview.evidence_id == evidence_id)
        .options(joinedload(EvidenceReview.reviewer))
        .order_by(EvidenceReview.id.desc())))


def list_awaiting_countersignature(session: Session, centre_id: int) -> list[CriterionDecision]:
    """Return the centre's trainee decisions waiting for a countersignature, oldest first."""
    learner = select(User.id).where(User.centre_id == centre_id)
    return list(session.scalars(
        select(CriterionDecision)
        .join(Enrolment, Enrolment.id == CriterionDecision.enrolment_id)
        .where(CriterionDecision.status == "awaiting_countersignature",
               Enrolment.learner_id.in_(learner))
        .options(joinedload(CriterionDecision.criterion),
                 joinedload(CriterionDecision.decided_by),
                 joinedload(CriterionDecision.enrolment).joinedload(Enrolment.learner))
        .order_by(CriterionDecision.decided_at)))


def audit_events_query(learner_id: int) -> Select[AuditEvent]:
    """A learner's audit history; listed newest first by seq (`portfolio.paging.paginate`
    with descending=True), a page at a time: nothing older is ever cut off."""
    return select(AuditEvent).where(AuditEvent.learner_id == learner_id)


def list_decisions(session: Session, enrolment_id: int) -> list[CriterionDecision]:
    """Return every decision of an enrolment (live and ended), oldest first."""
    return list(session.scalars(
        select(CriterionDecision).where(CriterionDecision.enrolment_id == enrolment_id)
        .options(joinedload(CriterionDecision.criterion),
                 joinedload(CriterionDecision.decided_by),
                 joinedload(CriterionDecision.countersigned_by))
        .order_by(CriterionDecision.id)))


def list_returned_to(session: Session, assessor_id: int) -> list[CriterionDecision]:
    """Decisions this assessor made that a countersigner returned, and that nobody has decided
    again since (oldest first): the trainee's own to-do."""
    later = aliased(CriterionDecision)
    return list(session.scalars(
        select(CriterionDecision)
        .where(CriterionDecision.status == "returned",
               CriterionDecision.decided_by_id == assessor_id,
               ~exists().where(later.enrolment_id == CriterionDecision.enrolment_id,
                               later.criterion_id == CriterionDecision.criterion_id,
                               later.id > CriterionDecision.id))
        .options(joinedload(CriterionDecision.criterion),
                 joinedload(CriterionDecision.enrolment).joinedload(Enrolment.learner))
        .order_by(CriterionDecision.ended_at)))
