"""Each person's to-do list, built from the state of the records (never from stored flags).

Every entry says what is waiting, how many, how long the oldest has waited, and links to the
page where the work is done. Queries stay per person and bounded: an assessor with 60 learners
costs a handful of grouped queries, not one per learner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import url_for
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from portfolio.assessment.queries import list_awaiting_countersignature, list_returned_to
from portfolio.auth.resets import pending_invitations
from portfolio.db import utcnow
from portfolio.job_states import JobStatus
from portfolio.models import (
    ActionStatus,
    Criterion,
    CriterionDecision,
    Enrolment,
    EnrolmentStatus,
    Evidence,
    EvidenceMapping,
    EvidenceReview,
    EvidenceVersion,
    ExportJob,
    IqaAction,
    IqaSample,
    SampleStatus,
    Signature,
    User,
    WitnessRequest,
    WitnessStatus,
)
from portfolio.permissions import can_countersign
from portfolio.sampling.services import list_plans, live_items

LIVE = ("met", "awaiting_countersignature")


@dataclass(frozen=True)
class Todo:
    key: str  # a stable name, for tests and styling
    label: str  # "3 drafts to submit"
    link: str
    count: int = 1
    oldest: datetime | None = None  # how long the oldest has waited
    detail: str = ""  # a line under it (e.g. the assessor's feedback)
    urgent: bool = False
    items: list[tuple[str, str, str]] = field(default_factory=list)  # (title, link, detail)


def waited(oldest: datetime | None, now: datetime | None = None) -> str:
    """'today', '1 day', '5 days' — how long the oldest has been waiting."""
    if oldest is None:
        return ""
    days = ((now or utcnow()) - oldest).days
    return "today" if days <= 0 else f"{days} day{'s' if days != 1 else ''}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


def _signature(session: Session, enrolment_id: int, purpose: str) -> Signature | None:
    return session.scalar(select(Signature).where(
        Signature.enrolment_id == enrolment_id, Signature.purpose == purpose,
        Signature.invalidated_at.is_(None)).order_by(Signature.id.desc()).limit(1))


@dataclass(frozen=True)
class Completion:
    signed_off: Signature
    cosigned: Signature


def completion(session: Session, enrolment: Enrolment) -> Completion | None:
    """The two signatures that finish a unit, if both stand."""
    signoff = _signature(session, enrolment.id, "unit_signoff")
    cosign = _signature(session, enrolment.id, "unit_cosign")
    return Completion(signoff, cosign) if signoff and cosign else None


# --- learner -------------------------------------------------------------------------------

def learner_todo(session: Session, learner: User, enrolments: list[Enrolment]) -> list[Todo]:
    todos: list[Todo] = []
    for e in enrolments:
        unit = f"Unit {e.unit.number}"
        signoff = _signature(session, e.id, "unit_signoff")
        cosign = _signature(session, e.id, "unit_cosign")
        if signoff is not None and cosign is None:
            todos.append(Todo(
                "cosign", f"Co-sign {unit}: your assessor has signed it off",
                url_for("assessment.sign_off", enrolment_id=e.id) + "#co-title",
                oldest=signoff.signed_at, urgent=True,
                detail="One signature and the unit is complete."))
        elif signoff is None and _all_met(session, e) \
                and _signature(session, e.id, "unit_declaration") is None:
            todos.append(Todo(
                "declare", f"Sign your declaration for {unit}: every criterion is met",
                url_for("assessment.sign_off", enrolment_id=e.id) + "#decl-title",
                urgent=True, detail="Your assessor signs the unit off after it."))
        if e.status == EnrolmentStatus.COMPLETED:
            continue
        referred = list(session.execute(
            select(Evidence, EvidenceVersion.title)
            .join(EvidenceVersion, and_(EvidenceVersion.evidence_id == Evidence.id,
                                        EvidenceVersion.version == Evidence.current_version))
            .where(Evidence.enrolment_id == e.id, Evidence.status == "referred")
            .order_by(Evidence.updated_at)))
        if referred:
            items = []
            for item, title in referred:
                review = session.scalar(select(EvidenceReview).where(
                    EvidenceReview.evidence_id == item.id, EvidenceReview.outcome == "referred")
                    .order_by(EvidenceReview.id.desc()).limit(1))
                items.append((title, url_for("evidence.detail", evidence_id=item.id),
                              _excerpt(review.feedback_md if review else "")))
            todos.append(Todo(
                "referred", f"{_plural(len(referred), 'item', 'items')} referred back to you "
                f"({unit})", url_for("evidence.index", enrolment_id=e.id, status="referred"),
                count=len(referred), oldest=referred[0][0].updated_at, items=items))
        drafts = session.execute(
            select(func.count(Evidence.id), func.min(Evidence.created_at))
            .where(Evidence.enrolment_id == e.id, Evidence.status == "draft",
                   Evidence.created_by_id == learner.id)).one()
        if drafts[0]:
            todos.append(Todo(
                "drafts", f"{_plural(drafts[0], 'draft', 'drafts')} to submit ({unit})",
                url_for("evidence.index", enrolment_id=e.id, status="draft"),
                count=drafts[0], oldest=drafts[1]))
        declined = session.execute(
            select(func.count(WitnessRequest.id), func.min(WitnessRequest.used_at))
            .where(WitnessRequest.enrolment_id == e.id,
                   WitnessRequest.status == WitnessStatus.DECLINED)).one()
        if declined[0]:
            todos.append(Todo(
                "witness_declined",
                f"{_plural(declined[0], 'witness', 'witnesses')} declined: ask someone else "
                f"({unit})", url_for("witness.index", enrolment_id=e.id),
                count=declined[0], oldest=declined[1]))
    actions = _open_actions(session, learner)
    if actions:
        todos.append(actions)
    return todos


def _all_met(session: Session, enrolment: Enrolment) -> bool:
    criteria = session.scalar(select(func.count(Criterion.id)).where(
        Criterion.unit_id == enrolment.unit_id, Criterion.is_retired.is_(False)))
    met = session.scalar(select(func.count(CriterionDecision.id)).where(
        CriterionDecision.enrolment_id == enrolment.id, CriterionDecision.status == "met"))
    return bool(criteria) and met >= criteria


def _open_actions(session: Session, user: User) -> Todo | None:
    row = session.execute(select(func.count(IqaAction.id), func.min(IqaAction.created_at),
                                 func.min(IqaAction.due_on))
                          .where(IqaAction.owner_id == user.id,
                                 IqaAction.status != ActionStatus.CLOSED)
                          ).one()
    if not row[0]:
        return None
    overdue = row[2] is not None and row[2] < date.today()
    return Todo("iqa_actions", f"{_plural(row[0], 'action', 'actions')} from your IQA",
                url_for("dashboard.home") + "#iqa-actions-title", count=row[0], oldest=row[1],
                urgent=overdue,
                detail=f"Due by {row[2]:%d %b %Y}" + (" — overdue" if overdue else ""))


# --- assessor ------------------------------------------------------------------------------

def assessor_todo(session: Session, assessor: User) -> list[Todo]:
    todos: list[Todo] = []
    mine = select(Enrolment.id).where(Enrolment.assessor_id == assessor.id)
    waiting = list(session.execute(
        select(Enrolment.id, func.count(Evidence.id), func.min(Evidence.submitted_at))
        .join(Evidence, Evidence.enrolment_id == Enrolment.id)
        .where(Enrolment.assessor_id == assessor.id, Evidence.status == "submitted")
        .group_by(Enrolment.id)))
    if waiting:
        total = sum(n for _e, n, _o in waiting)
        oldest_row = min(waiting, key=lambda r: r[2] or utcnow())
        todos.append(Todo(
            "review", f"{_plural(total, 'evidence item', 'evidence items')} to review "
            f"({_plural(len(waiting), 'learner', 'learners')})",
            url_for("assessment.queue", enrolment_id=oldest_row[0]),
            count=total, oldest=oldest_row[2],
            detail="The link opens the learner who has waited longest."))
    # Criteria with accepted evidence mapped and no standing decision: ready to judge.
    live = aliased(CriterionDecision)
    ready = list(session.execute(
        select(EvidenceMapping.criterion_id, Evidence.enrolment_id,
               func.min(Evidence.updated_at))
        .join(Evidence, Evidence.id == EvidenceMapping.evidence_id)
        .where(Evidence.enrolment_id.in_(mine), Evidence.status == "accepted",
               EvidenceMapping.removed_at.is_(None),
               ~exists().where(live.enrolment_id == Evidence.enrolment_id,
                               live.criterion_id == EvidenceMapping.criterion_id,
                               live.status.in_(LIVE)))
        .group_by(EvidenceMapping.criterion_id, Evidence.enrolment_id)))
    if ready:
        first = min(ready, key=lambda r: r[2] or utcnow())
        learners = len({r[1] for r in ready})
        todos.append(Todo(
            "decide", f"{_plural(len(ready), 'criterion', 'criteria')} with accepted evidence "
            f"to decide ({_plural(learners, 'learner', 'learners')})",
            url_for("assessment.batch_decide", enrolment_id=first[1]),
            count=len(ready), oldest=first[2]))
    if assessor.assessor_status == "qualified":
        asked = [d for d in list_awaiting_countersignature(session, assessor.centre_id)
                 if can_countersign(assessor, d.enrolment.learner.centre_id, d.decided_by_id,
                                    d.enrolment.learner_id, assessor.assessor_status,
                                    d.enrolment.iqa_id)]
        if asked:
            todos.append(Todo(
                "countersign", f"{_plural(len(asked), 'decision', 'decisions')} to countersign",
                url_for("assessment.countersign_queue"), count=len(asked),
                oldest=asked[0].decided_at))
    returned = list_returned_to(session, assessor.id)
    if returned:
        todos.append(Todo(
            "returned", f"{_plural(len(returned), 'decision', 'decisions')} returned to you "
            "with comments", url_for("assessment.countersign_queue") + "#returned-title",
            count=len(returned), oldest=returned[0].ended_at, urgent=True))
    signed_off = list(session.execute(
        select(Enrolment.id).where(Enrolment.assessor_id == assessor.id,
                                   Enrolment.status != EnrolmentStatus.COMPLETED)
        .where(exists().where(Signature.enrolment_id == Enrolment.id,
                              Signature.purpose == "unit_declaration",
                              Signature.invalidated_at.is_(None)))
        .where(~exists().where(Signature.enrolment_id == Enrolment.id,
                               Signature.purpose == "unit_signoff",
                               Signature.invalidated_at.is_(None)))).scalars())
    if signed_off:
        todos.append(Todo(
            "signoff", f"{_plural(len(signed_off), 'unit', 'units')} declared by the learner, "
            "waiting for your sign-off",
            url_for("assessment.sign_off", enrolment_id=signed_off[0]),
            count=len(signed_off)))
    actions = _open_actions(session, assessor)
    if actions:
        todos.append(actions)
    return todos


# --- IQA and admin -------------------------------------------------------------------------

def iqa_todo(session: Session, iqa: User, today: date) -> list[Todo]:
    todos: list[Todo] = []
    ready = [i for p in list_plans(session, iqa) for i in live_items(p)
             if i.sample is None and i.decision.status == "met"]
    if ready:
        planned = _plural(len(ready), "planned decision", "planned decisions")
        todos.append(Todo("sample", f"{planned} ready to sample", url_for("sampling.home"),
                          count=len(ready), oldest=min(i.added_at for i in ready)))
    in_progress = session.execute(
        select(func.count(IqaSample.id), func.min(IqaSample.started_at))
        .where(IqaSample.iqa_id == iqa.id, IqaSample.status == SampleStatus.IN_PROGRESS)).one()
    if in_progress[0]:
        todos.append(Todo("in_progress", f"{_plural(in_progress[0], 'sample', 'samples')} "
                          "started, outcome not signed yet", url_for("sampling.home"),
                          count=in_progress[0], oldest=in_progress[1]))
    overdue = session.execute(
        select(func.count(IqaAction.id), func.min(IqaAction.created_at))
        .join(IqaSample, IqaSample.id == IqaAction.sample_id)
        .where(IqaSample.iqa_id == iqa.id, IqaAction.status != ActionStatus.CLOSED,
               IqaAction.due_on < today)).one()
    if overdue[0]:
        todos.append(Todo("overdue", f"{_plural(overdue[0], 'action', 'actions')} you raised "
                          "are overdue", url_for("sampling.home"), count=overdue[0],
                          oldest=overdue[1], urgent=True))
    return todos


INVITATION_NUDGE = timedelta(days=3)


def admin_todo(session: Session, admin: User) -> list[Todo]:
    """Exports that failed and were not tried again since (a later job for the same learner's
    unit clears them), and invitations not accepted after three days."""
    later = aliased(ExportJob)
    failed = list(session.scalars(
        select(ExportJob)
        .join(Enrolment, Enrolment.id == ExportJob.enrolment_id)
        .join(User, User.id == Enrolment.learner_id)
        .where(User.centre_id == admin.centre_id, ExportJob.status == JobStatus.FAILED,
               ~exists().where(later.enrolment_id == ExportJob.enrolment_id,
                               later.id > ExportJob.id))
        .order_by(ExportJob.created_at)))
    todos = []
    if failed:
        todos.append(Todo("exports_failed", f"{_plural(len(failed), 'export', 'exports')} failed",
                          url_for("export.job", job_id=failed[0].id), count=len(failed),
                          oldest=failed[0].created_at, urgent=True,
                          detail="The link opens the oldest: it says why, and offers to try "
                          "again."))
    # Invitations sent more than INVITATION_NUDGE ago and still not accepted (expired too).
    waiting = [i for i in pending_invitations(session, admin.centre_id)
               if i.created_at <= utcnow() - INVITATION_NUDGE]
    if waiting:
        todos.append(Todo("invitations", f"{_plural(len(waiting), 'invitation', 'invitations')} "
                          "not accepted", url_for("admin.people") + "#invitations-title",
                          count=len(waiting), oldest=waiting[0].created_at,
                          detail="Send it again, or check the address with the person."))
    return todos
