"""The IQA sampling records an EQA pack shows: strategy, plan entries and samples, scoped to it.

`gather_sampling_records` is the one place the EQA pages and the pack's sampling-record PDF read
IQA sampling data, through the sampling module's own queries (`current_strategy`, `rates_of`,
`sample_records_for_enrolment`, `snapshot_intact`). It returns plain data limited to the pack:
the strategy for the pack's units, and only the plan entries and samples of its enrolments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from portfolio.models import CriterionDecision, Enrolment, EqaPack, SampleStatus
from portfolio.models.sampling import IqaSample, SamplingPlan, SamplingPlanItem
from portfolio.sampling import services as sampling


@dataclass(frozen=True)
class StrategyRecord:
    unit: str
    rates: list[tuple[str, int]]
    reason: str
    changed_by: str | None  # None: the centre has not changed the default rates
    changed_at: datetime | None


@dataclass(frozen=True)
class PlanEntry:
    plan_id: int
    unit: str
    iqa: str
    period_start: date
    period_end: date
    learner: str
    criterion: str
    decided_by: str
    reason: str
    source: str
    removed: bool
    removed_reason: str
    sample: str  # "Not started", "In progress" or "Completed"


@dataclass(frozen=True)
class SampleRecord:
    learner: str
    unit: str
    record: dict[str, Any]  # as `sampling.sample_records_for_enrolment` gives it
    snapshot_intact: bool


@dataclass
class SamplingRecords:
    strategies: list[StrategyRecord] = field(default_factory=list)
    entries: list[PlanEntry] = field(default_factory=list)
    samples: list[SampleRecord] = field(default_factory=list)


def gather_sampling_records(session: Session, pack: EqaPack) -> SamplingRecords:
    """Return the sampling strategy, plan entries and samples for the pack's enrolments."""
    ids = [item.enrolment_id for item in pack.items]
    enrolments = list(session.scalars(select(Enrolment).where(Enrolment.id.in_(ids)).options(
        joinedload(Enrolment.learner), joinedload(Enrolment.unit))))
    records = SamplingRecords()
    units = {e.unit_id: e.unit for e in enrolments}
    for unit_id in sorted(units):
        unit = units[unit_id]
        strategy = sampling.current_strategy(session, pack.centre_id, unit_id)
        rates = sampling.rates_of(strategy)
        records.strategies.append(StrategyRecord(
            unit=f"Unit {unit.number}: {unit.title}",
            rates=[(sampling.RATE_LABELS[name], rates[name]) for name in sampling.RATE_FIELDS],
            reason=strategy.reason if strategy else "",
            changed_by=strategy.changed_by.full_name if strategy else None,
            changed_at=strategy.changed_at if strategy else None))
    items = session.scalars(
        select(SamplingPlanItem)
        .join(SamplingPlan, SamplingPlan.id == SamplingPlanItem.plan_id)
        .where(SamplingPlanItem.enrolment_id.in_(ids), SamplingPlan.centre_id == pack.centre_id)
        .options(joinedload(SamplingPlanItem.plan),
                 joinedload(SamplingPlanItem.enrolment).joinedload(Enrolment.learner),
                 joinedload(SamplingPlanItem.decision).joinedload(CriterionDecision.criterion),
                 joinedload(SamplingPlanItem.decision).joinedload(CriterionDecision.decided_by),
                 joinedload(SamplingPlanItem.sample))
        .order_by(SamplingPlanItem.plan_id, SamplingPlanItem.id)).unique()
    for item in items:
        plan, sample = item.plan, item.sample
        records.entries.append(PlanEntry(
            plan_id=plan.id, unit=f"Unit {plan.unit.number}", iqa=plan.iqa.full_name,
            period_start=plan.period_start, period_end=plan.period_end,
            learner=item.enrolment.learner.full_name, criterion=item.decision.criterion.number,
            decided_by=item.decision.decided_by.full_name, reason=item.reason,
            source=item.source, removed=item.removed_at is not None,
            removed_reason=item.removed_reason or "",
            sample=("Not started" if sample is None else
                    "Completed" if sample.status == SampleStatus.COMPLETED else "In progress")))
    for enrolment in sorted(enrolments, key=lambda e: ids.index(e.id)):
        for record in sampling.sample_records_for_enrolment(session, enrolment.id):
            sample = session.get(IqaSample, record["id"])
            records.samples.append(SampleRecord(
                learner=enrolment.learner.full_name, unit=f"Unit {enrolment.unit.number}",
                record=record,
                snapshot_intact=sample is not None and sampling.snapshot_intact(sample)))
    return records
