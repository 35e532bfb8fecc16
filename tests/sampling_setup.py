"""Sampling data for the access matrix and page tests: a plan with items in every state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from portfolio.sampling import services as sampling
from tests.factories import LIMITS, World, accept, decide, make_evidence, sign_as


@dataclass
class SamplingIds:
    plan_id: int
    completed_sample_id: int  # agree with actions, one open action
    open_sample_id: int  # started, no outcome yet
    ready_item_id: int  # planned, not started
    spare_item_id: int  # planned, not started (for removal)
    action_id: int


def make_decisions(session: Session, world: World) -> None:
    """Four signed "met" decisions by the world's assessor on its learner's enrolment."""
    evidence = make_evidence(session, world.enrolment, world.learner, maps=(
        "1.1", "1.4", "1.5", "1.6"), submit=True, title="What our complaints procedure says")
    accept(session, evidence, world.assessor)
    for number in ("1.1", "1.4", "1.5", "1.6"):
        decide(session, world.enrolment, world.assessor, number, [evidence])
    session.commit()


def make_sampling(session: Session, world: World) -> SamplingIds:
    """Four signed decisions on the world's enrolment, planned by its IQA, two sampled."""
    make_decisions(session, world)
    today = date.today()
    plan = sampling.generate_plan(session, iqa=world.iqa, unit=world.unit,
                                  start=today - timedelta(days=7), end=today)
    items = sampling.live_items(plan)
    assert len(items) == 4
    done = sampling.start_sample(session, items[0], actor=world.iqa)
    sampling.record_outcome(
        session, done, actor=world.iqa, outcome="agree_with_actions",
        rationale_md="Sound judgement; the note could say more.",
        actions=[sampling.ActionInput("Say in the decision note which part of the account "
                                      "shows the criterion.", today + timedelta(days=14))],
        confirmation=sign_as(world.iqa), today=today, **LIMITS)
    started = sampling.start_sample(session, items[1], actor=world.iqa)
    session.commit()
    return SamplingIds(plan.id, done.id, started.id, items[2].id, items[3].id,
                       done.actions[0].id)
