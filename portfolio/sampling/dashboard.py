"""The IQA dashboard: what is waiting, each assessor's risk and coverage."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portfolio.db import must_get
from portfolio.models import (
    ActionStatus,
    CriterionDecision,
    Enrolment,
    IqaAction,
    IqaSample,
    SampleStatus,
    SamplingPlan,
    SamplingPlanItem,
    Signature,
    Unit,
    User,
)
from portfolio.sampling.outcomes import unit_sampling_ready
from portfolio.sampling.plans import list_plans, live_items
from portfolio.sampling.profiles import AssessorRate, assessor_rate
from portfolio.sampling.strategy import DEFAULT_RATES, current_strategy, rates_of


@dataclass
class AssessorSummary:
    rate: AssessorRate
    rate_label: str
    decisions: int
    sampled: int
    disagreements: int

    @property
    def percent(self) -> int:
        return round(100 * self.sampled / self.decisions) if self.decisions else 0


@dataclass
class Dashboard:
    ready: list[SamplingPlanItem]
    unit_ready: list[tuple[Enrolment, Signature]]
    in_progress: list[IqaSample]
    overdue: list[IqaAction]
    open_actions: list[IqaAction]
    assessors: list[AssessorSummary]
    stages: dict[str, int]
    plans: list[SamplingPlan]
    units: list[Unit]


def iqa_units(session: Session, iqa: User) -> list[Unit]:
    """The units of the enrolments this IQA quality-assures."""
    return list(session.scalars(select(Unit).join(Enrolment, Enrolment.unit_id == Unit.id)
                                .where(Enrolment.iqa_id == iqa.id).distinct()
                                .order_by(Unit.reference)))


def dashboard(session: Session, iqa: User, today: date) -> Dashboard:
    plans = list_plans(session, iqa)
    ready = [i for p in plans for i in live_items(p) if i.sample is None
             and i.decision.status == "met"]
    samples = list(session.scalars(select(IqaSample).where(IqaSample.iqa_id == iqa.id)
                                   .order_by(IqaSample.id)))
    in_progress = [s for s in samples if s.status == SampleStatus.IN_PROGRESS]
    actions = list(session.scalars(
        select(IqaAction).join(IqaSample, IqaSample.id == IqaAction.sample_id)
        .where(IqaSample.iqa_id == iqa.id, IqaAction.status != ActionStatus.CLOSED)
        .order_by(IqaAction.due_on, IqaAction.id)))
    stages = {"interim": 0, "summative": 0}
    for s in samples:
        stages[s.stage] += 1
    decided = defaultdict(int)
    for assessor_id, count in session.execute(
            select(CriterionDecision.decided_by_id, func.count(CriterionDecision.id))
            .join(Enrolment, Enrolment.id == CriterionDecision.enrolment_id)
            .where(Enrolment.iqa_id == iqa.id,
                   CriterionDecision.status.in_(("met", "reopened")))
            .group_by(CriterionDecision.decided_by_id)):
        decided[assessor_id] = count
    sampled: defaultdict[int, int] = defaultdict(int)
    disagreed: defaultdict[int, int] = defaultdict(int)
    for s in samples:
        if s.decision is not None:  # a unit sample is not one of the decisions counted
            sampled[s.assessor_id] += 1
        disagreed[s.assessor_id] += s.outcome == "disagree"
    units = iqa_units(session, iqa)
    rates = rates_of(current_strategy(session, iqa.centre_id, units[0].id)) if units else \
        dict(DEFAULT_RATES)
    summaries = []
    for assessor_id in sorted(set(decided) | set(sampled) | set(disagreed)):
        assessor = must_get(session, User, assessor_id)
        rate = assessor_rate(session, assessor)
        summaries.append(AssessorSummary(rate, rate.rate_label(rates), decided[assessor_id],
                                         sampled[assessor_id], disagreed[assessor_id]))
    summaries.sort(key=lambda s: ({"High": 0, "Medium": 1, "Low": 2}[s.rate.risk],
                                  s.rate.assessor.full_name))
    return Dashboard(ready, unit_sampling_ready(session, iqa), in_progress,
                     [a for a in actions if a.due_on < today], actions, summaries, stages,
                     plans, units)
