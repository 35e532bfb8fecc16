"""Samples and their signed outcomes; "disagree" reopens what the decision or sign-off held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from portfolio.assessment import states as decision_states
from portfolio.assessment.services import (
    SignerConfirmation,
    confirm_signer,
    unit_signoff,
)
from portfolio.assessment.signing import (
    decision_signature_ref,
    live_decisions,
    make_signature,
    sha256_of,
)
from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.enrolments import states as enrolment_states
from portfolio.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from portfolio.models import (
    CriterionDecision,
    Enrolment,
    IqaAction,
    IqaSample,
    Role,
    SamplingPlanItem,
    Signature,
    User,
)
from portfolio.permissions import can_sample
from portfolio.sampling import states as sample_states
from portfolio.sampling.plans import _check_independent
from portfolio.sampling.profiles import _raise_after_disagreement
from portfolio.sampling.snapshots import build_snapshot, build_unit_snapshot, snapshot_intact
from portfolio.sampling.strategy import (
    MAX_ACTION_DAYS,
    OUTCOME_LABELS,
    OUTCOME_STATEMENT,
    UNIT_OUTCOME_STATEMENT,
    current_strategy,
    is_iqa,
    rates_of,
)


def _check_may_sample(actor: User, decision: CriterionDecision, enrolment: Enrolment) -> None:
    if not can_sample(actor, enrolment):
        raise PermissionDenied("Only the learner's internal quality assurer samples this "
                               "decision.")
    _check_independent(actor, decision)


def start_sample(session: Session, item: SamplingPlanItem, *, actor: User) -> IqaSample:
    """Freeze the portfolio as it is into the sample's snapshot and start sampling."""
    if item.plan.iqa_id != actor.id:
        raise PermissionDenied("Only the plan's IQA samples its decisions.")
    decision, enrolment = item.decision, item.enrolment
    _check_may_sample(actor, decision, enrolment)
    if item.removed_at is not None:
        raise InvalidTransition("This decision was taken out of the plan.")
    if item.sample is not None:
        raise InvalidTransition("This decision is already being sampled.")
    if decision.status != "met":
        raise InvalidTransition("This decision no longer stands (it is "
                                f"{decision.status.replace('_', ' ')}), so there is nothing "
                                "to sample.")
    snapshot = build_snapshot(session, decision)
    sample = IqaSample(plan_item=item, decision_id=decision.id, enrolment_id=enrolment.id,
                       iqa_id=actor.id, status=sample_states.IN_PROGRESS, started_at=utcnow(),
                       snapshot=snapshot, snapshot_sha256=sha256_of(snapshot), rationale_md="")
    session.add(sample)
    session.flush()
    record_event(session, action="iqa.sample_started", subject_type="iqa_sample",
                 subject_id=sample.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"decision_id": decision.id, "snapshot_sha256": sample.snapshot_sha256})
    return sample


def _check_may_sample_unit(session: Session, actor: User, enrolment: Enrolment,
                           signoff: Signature) -> None:
    if not can_sample(actor, enrolment):
        raise PermissionDenied("Only the learner's internal quality assurer samples this "
                               "unit.")
    if actor.id == signoff.signer_id or any(
            actor.id in (d.decided_by_id, d.countersigned_by_id)
            for d in live_decisions(session, enrolment.id)):
        raise PermissionDenied("An internal quality assurer never samples a unit they signed "
                               "off, or decisions in it they made or countersigned.")


def unit_sample_of(session: Session, signoff_id: int) -> IqaSample | None:
    return session.scalar(select(IqaSample).where(IqaSample.signoff_id == signoff_id))


def start_unit_sample(session: Session, enrolment: Enrolment, *, actor: User) -> IqaSample:
    """Freeze the whole signed-off portfolio into a unit sample's snapshot and start sampling."""
    signoff = unit_signoff(session, enrolment)
    if not can_sample(actor, enrolment):
        raise PermissionDenied("Only the learner's internal quality assurer samples this "
                               "unit.")
    if signoff is None:
        raise InvalidTransition("This unit has no sign-off that stands, so there is nothing to "
                                "sample as a whole yet.")
    _check_may_sample_unit(session, actor, enrolment, signoff)
    if unit_sample_of(session, signoff.id) is not None:
        raise InvalidTransition("This unit sign-off is already being sampled.")
    snapshot = build_unit_snapshot(session, enrolment, signoff)
    sample = IqaSample(scope="unit", signoff_id=signoff.id, enrolment_id=enrolment.id,
                       iqa_id=actor.id, status=sample_states.IN_PROGRESS, started_at=utcnow(),
                       snapshot=snapshot, snapshot_sha256=sha256_of(snapshot), rationale_md="")
    session.add(sample)
    session.flush()
    record_event(session, action="iqa.sample_started", subject_type="iqa_sample",
                 subject_id=sample.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"scope": "unit", "signoff_id": signoff.id,
                         "snapshot_sha256": sample.snapshot_sha256})
    return sample


def unit_sampling_ready(session: Session, iqa: User) -> list[tuple[Enrolment, Signature]]:
    """This IQA's enrolments whose unit sign-off stands and has not been sampled yet (leaving
    out any the IQA may not sample: their own sign-off or decisions).

    A fixed number of statements whatever the number of enrolments: the dashboard lists
    candidates from the records, and starting the sample re-verifies the sign-off's signature
    chain (`start_unit_sample`), refusing one that no longer holds."""
    if not (iqa.is_active and iqa.has_role(Role.IQA)):
        return []
    rows = session.execute(
        select(Enrolment, Signature)
        .join(Signature, (Signature.enrolment_id == Enrolment.id)
              & (Signature.purpose == "unit_signoff") & Signature.invalidated_at.is_(None))
        .outerjoin(IqaSample, IqaSample.signoff_id == Signature.id)
        .where(Enrolment.iqa_id == iqa.id, Enrolment.assessor_id != iqa.id,
               Enrolment.learner_id != iqa.id, IqaSample.id.is_(None),
               Signature.signer_id != iqa.id)
        .options(joinedload(Enrolment.learner), joinedload(Enrolment.unit))
        .order_by(Enrolment.id, Signature.id.desc())).unique().all()
    latest: dict[int, tuple[Enrolment, Signature]] = {}
    for enrolment, signoff in rows:
        latest.setdefault(enrolment.id, (enrolment, signoff))
    if not latest:
        return []
    own = set(session.scalars(
        select(CriterionDecision.enrolment_id).distinct()
        .where(CriterionDecision.enrolment_id.in_(latest),
               CriterionDecision.status.in_(("met", "awaiting_countersignature")),
               or_(CriterionDecision.decided_by_id == iqa.id,
                   CriterionDecision.countersigned_by_id == iqa.id))))
    return [pair for enrolment_id, pair in latest.items() if enrolment_id not in own]


def get_sample(session: Session, sample_id: int, user: User) -> IqaSample:
    """The sample's IQA sees it, and so does the assessor whose work it judged."""
    sample = session.get(IqaSample, sample_id)
    if sample is None or not (
            (sample.iqa_id == user.id and is_iqa(user))
            or (sample.assessor_id == user.id and user.is_active)):
        raise NotFound("No such sample, or it is not one you can see.")
    return sample


@dataclass(frozen=True)
class ActionInput:
    description: str
    due_on: date | None


def _check_actions(actions: list[ActionInput], today: date) -> list[ActionInput]:
    wanted = [a for a in actions if (a.description or "").strip() or a.due_on]
    for n, action in enumerate(wanted, 1):
        if not action.description.strip():
            raise ValidationFailed(f"Action {n}: say what the assessor must do.",
                                   field="action_description")
        if action.due_on is None:
            raise ValidationFailed(f"Action {n}: give a due date.", field="action_due_on")
        if action.due_on < today:
            raise ValidationFailed(f"Action {n}: the due date is in the past.",
                                   field="action_due_on")
        if action.due_on > today + timedelta(days=MAX_ACTION_DAYS):
            raise ValidationFailed(f"Action {n}: the due date is more than a year away.",
                                   field="action_due_on")
    return wanted


def record_outcome(session: Session, sample: IqaSample, *, actor: User, outcome: str,
                   rationale_md: str, actions: list[ActionInput],
                   confirmation: SignerConfirmation, max_failures: int, lockout_minutes: int,
                   today: date) -> Signature:
    """Sign the sample's outcome. "disagree" reopens the criterion (or, for a unit sample,
    ends the unit sign-off) and raises the assessor's rate."""
    decision, enrolment = sample.decision, sample.enrolment
    if sample.iqa_id != actor.id:
        raise PermissionDenied("Only the IQA who took the sample records its outcome.")
    if decision is not None:
        _check_may_sample(actor, decision, enrolment)
    else:
        assert sample.signoff is not None
        _check_may_sample_unit(session, actor, enrolment, sample.signoff)
    if sample.status != sample_states.IN_PROGRESS:
        raise InvalidTransition("This sample's outcome has already been signed; it cannot "
                                "change.")
    if outcome not in OUTCOME_LABELS:
        raise ValidationFailed("Choose the outcome: agree, agree with actions or disagree.",
                               field="outcome")
    rationale = (rationale_md or "").strip()
    if not rationale:
        raise ValidationFailed("Give the rationale for your outcome.", field="rationale_md")
    wanted = _check_actions(actions, today)
    if outcome == "agree_with_actions" and not wanted:
        raise ValidationFailed("“Agree with actions” needs at least one action.",
                               field="action_description")
    if outcome == "agree" and wanted:
        raise ValidationFailed("An “agree” outcome has no actions: choose “agree with "
                               "actions” instead.", field="outcome")
    if outcome == "disagree" and decision is not None and decision.status != "met":
        raise InvalidTransition("This decision no longer stands, so there is nothing to "
                                "reopen. Reload the page.")
    if outcome == "disagree" and decision is None and getattr(
            unit_signoff(session, enrolment), "id", None) != sample.signoff_id:
        raise InvalidTransition("This unit sign-off no longer stands, so there is nothing to "
                                "reopen. Reload the page.")
    if not snapshot_intact(sample):
        raise InvalidTransition("The sample's snapshot does not match its hash: it was altered "
                                "outside the app. Nothing was signed.")
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    now = utcnow()
    owner = sample.assessor
    content: dict[str, Any] = {
        "sample_id": sample.id, "enrolment_id": enrolment.id, "outcome": outcome,
        "rationale_md": rationale, "snapshot_sha256": sample.snapshot_sha256,
        "actions": [{"description": a.description.strip(), "due_on": _iso(a.due_on),
                     "owner_id": owner.id} for a in wanted],
    }
    if decision is not None:
        content |= {"decision_id": decision.id, "criterion": decision.criterion.number,
                    "signatures": [decision_signature_ref(decision.signature)]}
        statement = OUTCOME_STATEMENT
    else:
        assert sample.signoff is not None
        content |= {"scope": "unit", "signoff_id": sample.signoff_id,
                    "signatures": [decision_signature_ref(sample.signoff)]}
        statement = UNIT_OUTCOME_STATEMENT
    signature = make_signature(session,
        enrolment=enrolment, purpose="iqa_outcome", subject_type="iqa_sample",
        subject_id=sample.id, signer_id=actor.id, signer_role=Role.IQA.value, typed_name=typed,
        statement=statement.format(hash=sample.snapshot_sha256,
                                   outcome=OUTCOME_LABELS[outcome].lower()),
        content=content, signed_at=now)
    session.add(signature)
    session.flush()
    sample_states.complete_sample(sample)
    sample.outcome, sample.rationale_md = outcome, rationale
    sample.signature_id, sample.completed_at = signature.id, now
    for action in wanted:
        session.add(IqaAction(sample_id=sample.id, enrolment_id=enrolment.id, owner_id=owner.id,
                              description=action.description.strip(), due_on=action.due_on,
                              status=sample_states.OPEN, created_at=now))
    session.flush()
    record_event(session, action="signature.iqa_outcome", subject_type="signature",
                 subject_id=signature.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"content_hash": signature.content_hash, "sample_id": sample.id,
                         "outcome": outcome})
    record_event(session, action="iqa.outcome_recorded", subject_type="iqa_sample",
                 subject_id=sample.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"outcome": outcome, "scope": sample.scope,
                         "decision_id": sample.decision_id, "signoff_id": sample.signoff_id,
                         "actions": len(wanted)})
    if outcome == "disagree":
        if decision is not None:
            _reopen(session, decision, actor=actor, sample=sample)
        else:
            _reopen_unit(session, enrolment, actor=actor, sample=sample)
        rates = rates_of(current_strategy(session, enrolment.learner.centre_id,
                                          enrolment.unit_id))
        _raise_after_disagreement(session, actor=actor, assessor=owner, rates=rates,
                                  sample=sample)
    return signature


def _reopen(session: Session, decision: CriterionDecision, *, actor: User,
            sample: IqaSample) -> None:
    """The decision no longer stands; neither do its countersignature and the unit sign-off."""
    now = utcnow()
    reason = (f"the internal quality assurer {actor.full_name} disagreed with it on "
              f"{now:%d %b %Y} (sample #{sample.id})")
    decision_states.move(decision, "reopen")
    decision.ended_at = now
    decision.ended_reason = reason
    ended = []
    for signature in session.scalars(select(Signature).where(
            Signature.enrolment_id == decision.enrolment_id,
            Signature.invalidated_at.is_(None))):
        if signature.id in (decision.signature_id, decision.countersignature_id) or \
                signature.purpose in ("unit_signoff", "unit_cosign"):
            signature.invalidated_at = now
            signature.invalidated_reason = reason
            ended.append(signature.id)
    enrolment = decision.enrolment
    detail: dict[str, Any] = {"decision_id": decision.id, "criterion": decision.criterion.number,
                              "signatures": ended, "sample_id": sample.id}
    if enrolment_states.reopen_if_completed(enrolment):
        detail["enrolment_reopened"] = True
    session.flush()
    record_event(session, action="decision.reopened", subject_type="decision",
                 subject_id=decision.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id, detail=detail)


def _reopen_unit(session: Session, enrolment: Enrolment, *, actor: User,
                 sample: IqaSample) -> None:
    """The unit sign-off and the learner's co-signature no longer stand; a completed
    enrolment is active again (so it cannot be claimed). The decisions themselves stand."""
    now = utcnow()
    reason = (f"the internal quality assurer {actor.full_name} disagreed with the unit "
              f"sign-off on {now:%d %b %Y} (sample #{sample.id})")
    ended = []
    for signature in session.scalars(select(Signature).where(
            Signature.enrolment_id == enrolment.id, Signature.invalidated_at.is_(None),
            Signature.purpose.in_(("unit_signoff", "unit_cosign")))):
        signature.invalidated_at = now
        signature.invalidated_reason = reason
        ended.append(signature.id)
    detail: dict[str, Any] = {"signatures": ended, "sample_id": sample.id,
                              "signoff_id": sample.signoff_id}
    if enrolment_states.reopen_if_completed(enrolment):
        detail["enrolment_reopened"] = True
    session.flush()
    record_event(session, action="unit.signoff_reopened", subject_type="enrolment",
                 subject_id=enrolment.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id, detail=detail)


def _iso(day: Any) -> str | None:
    return day.isoformat() if day is not None else None
