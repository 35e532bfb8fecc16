"""The sampling strategy per centre and unit: rates by assessor status, with their history."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, PermissionDenied, ValidationFailed
from portfolio.models import (
    Role,
    SamplingStrategy,
    Unit,
    User,
)
from portfolio.permissions import is_admin_of
from portfolio.sampling import plan as planner

RATE_FIELDS = ("trainee", "newly_qualified", "first_year", "experienced", "after_disagreement",
               "rpl")
RATE_LABELS = {
    "trainee": "Trainee assessor (every decision)",
    "newly_qualified": "Newly qualified assessor (summative decisions)",
    "first_year": "First-year assessor",
    "experienced": "Experienced assessor",
    "after_disagreement": "An assessor after a “disagree” outcome",
    "rpl": "Recognition of prior learning (RPL) claims",
}
DEFAULT_RATES = {"trainee": 100, "newly_qualified": 100, "first_year": 25, "experienced": 10,
                 "after_disagreement": 100, "rpl": 100}
STATUS_LABELS = {
    "trainee": "Trainee",
    "newly_qualified": "Newly qualified",
    "first_year": "First year",
    "experienced": "Experienced",
}
OUTCOME_LABELS = {"agree": "Agree", "agree_with_actions": "Agree with actions",
                  "disagree": "Disagree"}
ACTION_STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged",
                        "responded": "Responded", "closed": "Closed"}
OUTCOME_STATEMENT = ("I have sampled this assessment decision as recorded in the snapshot "
                     "with SHA-256 {hash}, and my outcome is: {outcome}.")
UNIT_OUTCOME_STATEMENT = ("I have sampled this unit's sign-off and the whole portfolio behind "
                          "it as recorded in the snapshot with SHA-256 {hash}, and my outcome "
                          "is: {outcome}.")
MAX_ACTION_DAYS = 366


def is_iqa(user: User) -> bool:
    return user.is_active and user.has_role(Role.IQA)


def can_manage_strategy(user: User) -> bool:
    """The centre's IQAs and admins view and change its sampling strategy."""
    return user.is_active and (user.has_role(Role.IQA) or is_admin_of(user, user.centre_id))


def current_strategy(session: Session, centre_id: int, unit_id: int) -> SamplingStrategy | None:
    """The newest strategy row for the centre and unit (None: the defaults apply)."""
    return session.scalar(select(SamplingStrategy).where(
        SamplingStrategy.centre_id == centre_id, SamplingStrategy.unit_id == unit_id)
        .order_by(SamplingStrategy.id.desc()).limit(1))


def strategy_history(session: Session, centre_id: int, unit_id: int) -> list[SamplingStrategy]:
    return list(session.scalars(select(SamplingStrategy).where(
        SamplingStrategy.centre_id == centre_id, SamplingStrategy.unit_id == unit_id)
        .order_by(SamplingStrategy.id.desc())))


def rates_of(strategy: SamplingStrategy | None) -> dict[str, int]:
    """The strategy's rates as whole percentages (the defaults when there is none)."""
    if strategy is None:
        return dict(DEFAULT_RATES)
    return {name: getattr(strategy, f"{name}_pct") for name in RATE_FIELDS}


def planner_rates(rates: dict[str, int]) -> planner.Rates:
    return planner.Rates(**{name: rates[name] / 100 for name in RATE_FIELDS})


def parse_rates(raw: dict[str, Any]) -> dict[str, int]:
    """Read six whole percentages; ValidationFailed names the first that is wrong."""
    rates: dict[str, int] = {}
    for name in RATE_FIELDS:
        value = str(raw.get(name, "")).strip().removesuffix("%").strip()
        if not re.fullmatch(r"[0-9]{1,3}", value) or not 0 <= int(value) <= 100:
            raise ValidationFailed(f"{RATE_LABELS[name]}: enter a whole percentage from 0 to "
                                   "100.", field=name)
        rates[name] = int(value)
    return rates


def set_strategy(session: Session, *, actor: User, unit: Unit, rates: dict[str, int],
                 reason: str) -> SamplingStrategy:
    """Record a new version of the centre's strategy for a unit (the old ones stay)."""
    if not can_manage_strategy(actor):
        raise PermissionDenied("Only an internal quality assurer or a centre admin changes the "
                               "sampling strategy.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why the strategy changes.", field="reason")
    before = rates_of(current_strategy(session, actor.centre_id, unit.id))
    if rates == before:
        raise InvalidTransition("Those are the rates already in force; nothing was changed.")
    row = SamplingStrategy(centre_id=actor.centre_id, unit_id=unit.id, reason=reason[:2000],
                           changed_by_id=actor.id, changed_at=utcnow(),
                           **{f"{name}_pct": rates[name] for name in RATE_FIELDS})
    session.add(row)
    session.flush()
    record_event(session, action="sampling.strategy_changed", subject_type="sampling_strategy",
                 subject_id=row.id, actor=actor, actor_role=_staff_role(actor),
                 detail={"unit": unit.reference, "before": before, "after": rates})
    return row


def _staff_role(user: User) -> str:
    return Role.IQA.value if user.has_role(Role.IQA) else Role.ADMIN.value
