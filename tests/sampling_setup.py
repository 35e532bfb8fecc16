"""Sampling data for the access matrix and page tests: a plan with items in every state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.assessment.services import cosign_unit, sign_off_unit, sign_unit_declaration
from portfolio.models import Criterion, CriterionDecision, Enrolment, Signature, User
from portfolio.sampling import services as sampling
from tests.factories import (
    LIMITS,
    World,
    accept,
    decide,
    make_enrolment,
    make_evidence,
    make_user,
    sign_as,
)


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


def sign_off_whole_unit(session: Session, enrolment: Enrolment, learner: User, assessor: User,
                        *, cosign: bool = True, sign_off: bool = True) -> Signature | None:
    """Decide every criterion not yet decided (LO1 on a reflective account, LO2 on an
    observation), have the learner declare (unless they have), the assessor sign off and
    (optionally) the learner co-sign, which completes the enrolment. Returns the sign-off;
    without `sign_off`, stops once the unit is ready for it and returns None."""
    decided = set(session.scalars(select(CriterionDecision.criterion_id).where(
        CriterionDecision.enrolment_id == enrolment.id,
        CriterionDecision.status == "met")))
    numbers = [c.number for c in session.scalars(select(Criterion).where(
        Criterion.unit_id == enrolment.unit_id, Criterion.is_retired.is_(False))
        .order_by(Criterion.position)) if c.id not in decided]
    lo1 = tuple(n for n in numbers if n.startswith("1."))
    lo2 = tuple(n for n in numbers if not n.startswith("1."))
    account = make_evidence(session, enrolment, learner, "reflective_account",
                            title="How I resolve complaints", maps=lo1, submit=True)
    accept(session, account, assessor)
    observation = make_evidence(session, enrolment, assessor, "observation",
                                title="Observed complaint handling", maps=lo2, submit=True)
    accept(session, observation, assessor)
    for number in numbers:
        decide(session, enrolment, assessor, number,
               [account if number.startswith("1.") else observation])
    declared = session.scalar(select(Signature.id).where(
        Signature.enrolment_id == enrolment.id, Signature.purpose == "unit_declaration"))
    if declared is None:
        sign_unit_declaration(session, enrolment, actor=learner, confirmation=sign_as(learner),
                              **LIMITS)
    if not sign_off:
        session.commit()
        return None
    signoff = sign_off_unit(session, enrolment, actor=assessor, confirmation=sign_as(assessor),
                            **LIMITS)
    if cosign:
        cosign_unit(session, enrolment, actor=learner, confirmation=sign_as(learner), **LIMITS)
    session.commit()
    return signoff


def make_unit_samples(session: Session, world: World) -> tuple[int, int]:
    """Two more learners of the world's assessor and IQA with signed-off units: one unit sample
    started (returned: its id), one unit waiting on the IQA's dashboard (its enrolment id)."""
    ids = []
    for name in ("Uma Unitwise", "Rhys Ready"):
        learner = make_user(session, world.learner.centre, "learner", name=name)
        enrolment = make_enrolment(session, learner, world.assessor, world.iqa, world.unit,
                                   employer="Northern Water")
        sign_off_whole_unit(session, enrolment, learner, world.assessor)
        ids.append(enrolment)
    sample = sampling.start_unit_sample(session, ids[0], actor=world.iqa)
    session.commit()
    return sample.id, ids[1].id
