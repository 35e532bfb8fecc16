"""IQA sampling: strategy (with history), assessor risk profiles, plans, samples and actions."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.assessment import CriterionDecision, Signature
from portfolio.models.enrolments import Enrolment
from portfolio.models.qualifications import Unit
from portfolio.models.users import User

ASSESSOR_RISK_STATUSES = ("trainee", "newly_qualified", "first_year", "experienced")
PLAN_ITEM_SOURCES = ("generated", "manual")
class SampleStatus(enum.StrEnum):
    """An IQA sample is in progress until its outcome is signed."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class ActionStatus(enum.StrEnum):
    """An IQA action's life; the moves are in `portfolio.sampling.states`."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESPONDED = "responded"
    CLOSED = "closed"


SAMPLE_STATUSES = tuple(status.value for status in SampleStatus)
SAMPLE_OUTCOMES = ("agree", "agree_with_actions", "disagree")
SAMPLE_SCOPES = ("criterion", "unit")
ACTION_STATUSES = tuple(status.value for status in ActionStatus)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _pct(column: str) -> str:
    return f"{column} >= 0 AND {column} <= 100"


class SamplingStrategy(Base):
    """One version of a centre's sampling strategy for a unit; the newest row is current.

    Rates are whole percentages of decisions to sample. Rows are never edited: each change is
    a new row saying who changed it, when and why.
    """

    __tablename__ = "sampling_strategies"
    __table_args__ = (
        CheckConstraint(
            " AND ".join(_pct(c) for c in (
                "trainee_pct", "newly_qualified_pct", "first_year_pct", "experienced_pct",
                "after_disagreement_pct", "rpl_pct")),
            name="rates_are_percentages"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    trainee_pct: Mapped[int]
    newly_qualified_pct: Mapped[int]
    first_year_pct: Mapped[int]
    experienced_pct: Mapped[int]
    after_disagreement_pct: Mapped[int]
    rpl_pct: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()
    changed_by: Mapped[User] = relationship()


class AssessorSamplingProfile(Base):
    """One version of an assessor's risk profile at a centre; the newest row is current.

    ``override_pct`` (when set) wins over the strategy's rate for the assessor's status; a
    "disagree" outcome sets it to the strategy's after-disagreement rate automatically
    (``source`` "disagree"); only an IQA lowers it again.
    """

    __tablename__ = "assessor_sampling_profiles"
    __table_args__ = (
        CheckConstraint(f"status IS NULL OR status IN {_in(ASSESSOR_RISK_STATUSES)}",
                        name="status_known"),
        CheckConstraint("override_pct IS NULL OR (override_pct >= 0 AND override_pct <= 100)",
                        name="override_is_percentage"),
        CheckConstraint("source IN ('iqa', 'admin', 'disagree')", name="source_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    assessor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str | None] = mapped_column(String(20))  # None: not recorded (100%)
    override_pct: Mapped[int | None]
    raised_after_disagreement: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assessor: Mapped[User] = relationship(foreign_keys=[assessor_id])
    changed_by: Mapped[User] = relationship(foreign_keys=[changed_by_id])


class SamplingPlan(Base):
    """An IQA's sampling plan for one unit and period, generated reproducibly, then edited."""

    __tablename__ = "sampling_plans"
    __table_args__ = (
        CheckConstraint("period_end >= period_start", name="period_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    iqa_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    # The strategy's rates (percentages) the plan was generated with.
    rates: Mapped[dict[str, int]] = mapped_column(JSON)
    # What the generator chose and a hash over its inputs: regenerating must give the same.
    generated_ids: Mapped[list[int]] = mapped_column(JSON)
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship()
    iqa: Mapped[User] = relationship()
    items: Mapped[list[SamplingPlanItem]] = relationship(
        back_populates="plan", order_by="SamplingPlanItem.id")


class SamplingPlanItem(Base):
    """One decision in a plan; removing it by hand keeps the row with who, when and why."""

    __tablename__ = "sampling_plan_items"
    __table_args__ = (
        CheckConstraint(f"source IN {_in(PLAN_ITEM_SOURCES)}", name="source_known"),
        CheckConstraint("stage IN ('interim', 'summative')", name="stage_known"),
        Index("uq_sampling_plan_items_live", "plan_id", "decision_id", unique=True,
              sqlite_where=text("removed_at IS NULL"),
              postgresql_where=text("removed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("sampling_plans.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("criterion_decisions.id"), index=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    reason: Mapped[str] = mapped_column(String(300))
    stage: Mapped[str] = mapped_column(String(10))  # interim or summative when planned
    source: Mapped[str] = mapped_column(String(10))
    added_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removed_reason: Mapped[str | None] = mapped_column(String(300))

    plan: Mapped[SamplingPlan] = relationship(back_populates="items")
    decision: Mapped[CriterionDecision] = relationship()
    enrolment: Mapped[Enrolment] = relationship()
    sample: Mapped[IqaSample | None] = relationship(back_populates="plan_item")


class IqaSample(Base):
    """An IQA's sample of one decision, or of a whole unit's sign-off (``scope`` "unit"): the
    portfolio as it was (snapshot + hash), and the outcome.

    A criterion sample comes from a plan item and judges one decision; a unit sample judges the
    assessor's live unit sign-off (``signoff_id``) and has neither plan item nor decision.
    """

    __tablename__ = "iqa_samples"
    __table_args__ = (
        CheckConstraint(f"scope IN {_in(SAMPLE_SCOPES)}", name="scope_known"),
        CheckConstraint("scope <> 'criterion' OR (decision_id IS NOT NULL AND plan_item_id IS "
                        "NOT NULL)", name="criterion_has_decision"),
        CheckConstraint("scope <> 'unit' OR (signoff_id IS NOT NULL AND decision_id IS NULL "
                        "AND plan_item_id IS NULL)", name="unit_has_signoff"),
        CheckConstraint(f"status IN {_in(SAMPLE_STATUSES)}", name="status_known"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {_in(SAMPLE_OUTCOMES)}",
                        name="outcome_known"),
        CheckConstraint("status <> 'completed' OR (outcome IS NOT NULL AND signature_id IS NOT "
                        "NULL AND completed_at IS NOT NULL)", name="completed_is_signed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10), default="criterion")
    plan_item_id: Mapped[int | None] = mapped_column(ForeignKey("sampling_plan_items.id"),
                                                     unique=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("criterion_decisions.id"),
                                                    index=True)
    # The unit sign-off a unit sample judges (one sample per sign-off).
    signoff_id: Mapped[int | None] = mapped_column(ForeignKey("signatures.id"), unique=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    iqa_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=SampleStatus.IN_PROGRESS)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot_sha256: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(20))
    rationale_md: Mapped[str] = mapped_column(Text, default="")
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("signatures.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    plan_item: Mapped[SamplingPlanItem | None] = relationship(back_populates="sample")
    decision: Mapped[CriterionDecision | None] = relationship()
    signoff: Mapped[Signature | None] = relationship(foreign_keys=[signoff_id])
    enrolment: Mapped[Enrolment] = relationship()
    iqa: Mapped[User] = relationship()
    signature: Mapped[Signature | None] = relationship(foreign_keys=[signature_id])
    actions: Mapped[list[IqaAction]] = relationship(back_populates="sample",
                                                    order_by="IqaAction.id")

    @property
    def is_unit(self) -> bool:
        return self.scope == "unit"

    @property
    def assessor_id(self) -> int:
        """Whose work was sampled: the decision's maker, or the assessor who signed off."""
        if self.decision is not None:
            return self.decision.decided_by_id
        assert self.signoff is not None
        return self.signoff.signer_id

    @property
    def assessor(self) -> User:
        if self.decision is not None:
            return self.decision.decided_by
        assert self.signoff is not None
        return self.signoff.signer

    @property
    def criterion_label(self) -> str:
        """The criterion's number, or "Unit" for a sample of the whole unit's sign-off."""
        return self.decision.criterion.number if self.decision is not None else "Unit"

    @property
    def stage(self) -> str:
        """Interim or summative; a unit sign-off is summative by definition."""
        return self.plan_item.stage if self.plan_item is not None else "summative"


class IqaAction(Base):
    """An action point from a sample: owner, due date; acknowledged, responded to, closed."""

    __tablename__ = "iqa_actions"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(ACTION_STATUSES)}", name="status_known"),
        CheckConstraint("status = 'open' OR acknowledged_at IS NOT NULL", name="acknowledged"),
        CheckConstraint("status NOT IN ('responded', 'closed') OR responded_at IS NOT NULL",
                        name="responded"),
        CheckConstraint("status <> 'closed' OR (closed_at IS NOT NULL AND closed_by_id IS NOT "
                        "NULL)", name="closed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("iqa_samples.id"), index=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=ActionStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_md: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closing_note: Mapped[str | None] = mapped_column(Text)

    sample: Mapped[IqaSample] = relationship(back_populates="actions")
    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])
