"""Each assessor's sampling status and rate, raised after a disagreement, lowered by an IQA."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from portfolio.models import (
    AssessorSamplingProfile,
    IqaSample,
    Role,
    User,
    UserRole,
)
from portfolio.models.sampling import ASSESSOR_RISK_STATUSES
from portfolio.sampling import plan as planner
from portfolio.sampling.strategy import STATUS_LABELS, _staff_role, can_manage_strategy


@dataclass(frozen=True)
class AssessorRate:
    assessor: User
    profile: AssessorSamplingProfile | None
    status: str | None  # one of ASSESSOR_RISK_STATUSES, or None: not recorded
    override_pct: int | None
    raised_after_disagreement: bool

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status or "", "Not recorded")

    def rate_label(self, rates: dict[str, int]) -> str:
        if self.override_pct is not None:
            why = "raised after a disagreement" if self.raised_after_disagreement else "set by IQA"
            return f"{self.override_pct}% ({why})"
        if self.status is None:
            return "100% (status not recorded)"
        if self.status == "newly_qualified":
            return (f"{rates['newly_qualified']}% summative, {rates['first_year']}% interim")
        return f"{rates[self.status]}%"

    @property
    def risk(self) -> str:
        """High, medium or low: how closely this assessor's work is watched."""
        if self.raised_after_disagreement or self.status in (None, "trainee"):
            return "High"
        if self.status in ("newly_qualified", "first_year"):
            return "Medium"
        if self.override_pct is not None and self.override_pct >= 50:
            return "High"
        return "Low"


def centre_assessors(session: Session, centre_id: int) -> list[User]:
    return list(session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(User.centre_id == centre_id, UserRole.role == Role.ASSESSOR.value)
        .order_by(User.full_name, User.id)))


def current_profile(session: Session, assessor_id: int) -> AssessorSamplingProfile | None:
    return session.scalar(select(AssessorSamplingProfile).where(
        AssessorSamplingProfile.assessor_id == assessor_id)
        .order_by(AssessorSamplingProfile.id.desc()).limit(1))


def assessor_rate(session: Session, assessor: User) -> AssessorRate:
    profile = current_profile(session, assessor.id)
    status = profile.status if profile else None
    if assessor.assessor_status == "trainee":
        status = "trainee"  # a trainee's decisions are always sampled as a trainee's
    return AssessorRate(assessor, profile, status, profile.override_pct if profile else None,
                        bool(profile and profile.raised_after_disagreement))


def profile_history(session: Session, centre_id: int) -> list[AssessorSamplingProfile]:
    return list(session.scalars(select(AssessorSamplingProfile).where(
        AssessorSamplingProfile.centre_id == centre_id)
        .order_by(AssessorSamplingProfile.id.desc())))


def set_profile(session: Session, *, actor: User, assessor: User, status: str | None,
                override_pct: int | None, reason: str) -> AssessorSamplingProfile:
    """Record an assessor's status and, optionally, a rate that wins over the strategy's.

    Anyone who may manage the strategy can raise a rate; only an IQA lowers or clears one.
    """
    if not can_manage_strategy(actor):
        raise PermissionDenied("Only an internal quality assurer or a centre admin sets "
                               "assessors' sampling rates.")
    if assessor.centre_id != actor.centre_id or not assessor.has_role(Role.ASSESSOR):
        raise NotFound("No such assessor at your centre.")
    if assessor.id == actor.id:
        raise PermissionDenied("You cannot set the sampling rate for your own decisions.")
    if status is not None and status not in ASSESSOR_RISK_STATUSES:
        raise ValidationFailed("Choose the assessor's status from the list.", field="status")
    if assessor.assessor_status == "trainee" and status not in (None, "trainee"):
        raise ValidationFailed(f"{assessor.full_name} is a trainee assessor: their status stays "
                               "“Trainee” until an admin records them as qualified.",
                               field="status")
    if override_pct is not None and not 0 <= override_pct <= 100:
        raise ValidationFailed("The rate must be a whole percentage from 0 to 100.",
                               field="override_pct")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why the assessor's rate changes.", field="reason")
    now_rate = assessor_rate(session, assessor)
    old = now_rate.override_pct
    lowers = old is not None and (override_pct is None or override_pct < old)
    if lowers and not actor.has_role(Role.IQA):
        raise PermissionDenied("Only an internal quality assurer can lower an assessor's "
                               "sampling rate.")
    if (status, override_pct) == (now_rate.profile.status if now_rate.profile else None, old):
        raise InvalidTransition("That is the assessor's current status and rate; nothing was "
                                "changed.")
    # A raised rate stays "after disagreement" until someone changes the rate itself.
    keeps_raise = now_rate.raised_after_disagreement and override_pct == old
    row = AssessorSamplingProfile(
        centre_id=actor.centre_id, assessor_id=assessor.id, status=status,
        override_pct=override_pct, raised_after_disagreement=keeps_raise,
        source="iqa" if actor.has_role(Role.IQA) else "admin", reason=reason[:2000],
        changed_by_id=actor.id, changed_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, action="sampling.assessor_rate_changed", subject_type="user",
                 subject_id=assessor.id, actor=actor, actor_role=_staff_role(actor),
                 detail={"status": status, "override_pct": override_pct, "before": old})
    return row


def _raise_after_disagreement(session: Session, *, actor: User, assessor: User,
                              rates: dict[str, int], sample: IqaSample) -> None:
    now_rate = assessor_rate(session, assessor)
    target = rates["after_disagreement"]
    if now_rate.override_pct is not None and now_rate.override_pct >= target:
        target = now_rate.override_pct
    row = AssessorSamplingProfile(
        centre_id=assessor.centre_id, assessor_id=assessor.id,
        status=now_rate.profile.status if now_rate.profile else None, override_pct=target,
        raised_after_disagreement=True, source="disagree",
        reason=f"Raised automatically: IQA disagreed with a decision (sample #{sample.id}).",
        changed_by_id=actor.id, changed_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, action="sampling.assessor_rate_raised", subject_type="user",
                 subject_id=assessor.id, actor=actor, actor_role=Role.IQA.value,
                 detail={"override_pct": target, "before": now_rate.override_pct,
                         "sample_id": sample.id})


def risks_for(session: Session, assessor_ids: set[int]) -> dict[int, planner.AssessorRisk]:
    """Risk profiles for the generator; an assessor with nothing recorded is left out (100%)."""
    risks: dict[int, planner.AssessorRisk] = {}
    for assessor in session.scalars(select(User).where(User.id.in_(assessor_ids))):
        rate = assessor_rate(session, assessor)
        if rate.override_pct is not None:
            risks[assessor.id] = planner.AssessorRisk(
                assessor.id, rate.status or "experienced",
                recent_disagreement=rate.raised_after_disagreement,
                override_rate=rate.override_pct / 100)
        elif rate.status is not None:
            risks[assessor.id] = planner.AssessorRisk(assessor.id, rate.status)
    return risks
