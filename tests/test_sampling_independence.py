"""Independence in quality assurance: an enrolment's IQA never countersigns its decisions, and
no plan, hand-added item or sample ever holds a decision its IQA made or countersigned.

The cast has one person holding both roles: Dana, a qualified assessor who is also an IQA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portfolio.assessment.services import countersign_decision
from portfolio.auth.services import create_api_token
from portfolio.db import utcnow
from portfolio.errors import PermissionDenied, ValidationFailed
from portfolio.models import CriterionDecision, Enrolment, IqaSample, SamplingPlanItem, User
from portfolio.permissions import can_countersign, is_independent_iqa
from portfolio.sampling import plan as planner
from portfolio.sampling import services as sampling
from tests.conftest import Browserless
from tests.factories import (
    LIMITS,
    PASSWORD,
    World,
    accept,
    decide,
    make_enrolment,
    make_evidence,
    make_user,
    make_world,
    sign_as,
)


@dataclass
class DualCast:
    w: World
    dana: User  # qualified assessor and IQA
    iqa_enrolment: Enrolment  # Dana is its IQA; a trainee assesses it
    other_enrolment: Enrolment  # another IQA; the same trainee assesses it
    waiting: CriterionDecision  # the trainee's decision in iqa_enrolment, awaiting countersign
    elsewhere: CriterionDecision  # the trainee's decision in other_enrolment, awaiting too


def _trainee_decision(session, world: World, enrolment: Enrolment, learner: User,
                      number: str) -> CriterionDecision:
    item = make_evidence(session, enrolment, learner, maps=(number,), submit=True)
    accept(session, item, world.trainee)
    decision = decide(session, enrolment, world.trainee, number, [item])
    assert decision.status == "awaiting_countersignature"
    return decision


def make_dual(session) -> DualCast:
    w = make_world(session)
    centre = w.learner.centre
    dana = make_user(session, centre, "assessor", "iqa", name="Dana Dual",
                     email="dana@example.org", assessor_status="qualified")
    first = make_user(session, centre, "learner", name="Fola First")
    second = make_user(session, centre, "learner", name="Sami Second")
    iqa_enrolment = make_enrolment(session, first, w.trainee, dana, w.unit)
    other_enrolment = make_enrolment(session, second, w.trainee, w.iqa, w.unit)
    waiting = _trainee_decision(session, w, iqa_enrolment, first, "1.1")
    elsewhere = _trainee_decision(session, w, other_enrolment, second, "1.1")
    session.commit()
    return DualCast(w, dana, iqa_enrolment, other_enrolment, waiting, elsewhere)


# --- the pure rules -------------------------------------------------------------------------

def test_permission_rules_as_a_table(session):
    cast = make_dual(session)
    dana, centre = cast.dana, cast.dana.centre_id
    assert not can_countersign(dana, centre, cast.w.trainee.id, 1, "qualified", dana.id)
    assert can_countersign(dana, centre, cast.w.trainee.id, 1, "qualified", cast.w.iqa.id)
    assert can_countersign(dana, centre, cast.w.trainee.id, 1, "qualified", None)
    assert not is_independent_iqa(dana.id, 7, dana.id, 9)  # countersigned it
    assert not is_independent_iqa(dana.id, dana.id, None, 9)  # decided it
    assert not is_independent_iqa(dana.id, 7, None, dana.id)  # is its learner
    assert is_independent_iqa(dana.id, 7, 8, 9)


def test_the_generator_leaves_out_what_the_iqa_countersigned():
    def cand(i: int, countersigned_by: int | None) -> planner.Candidate:
        return planner.Candidate(id=i, assessor_id=2, learner_id=10 + i, employer="Acme",
                                 unit="U40", methods=("observation",), stage="interim",
                                 decided_on=date(2026, 11, 2), countersigned_by_id=countersigned_by)

    trainee = {2: planner.AssessorRisk(2, "trainee")}
    plan = planner.generate_plan([cand(1, 5), cand(2, 6), cand(3, None)], trainee, iqa_id=5,
                                 period_key="p")
    assert plan.candidate_ids == [2, 3]  # a trainee is sampled at 100%, but never by 5 for 1
    assert plan.coverage.excluded == 1
    assert planner.coverage_of([cand(1, 5), cand(2, 6)], [2], iqa_id=5).excluded == 1


# --- countersigning: service, page, API, queue ----------------------------------------------

def test_the_iqa_cannot_countersign_in_the_service(session):
    cast = make_dual(session)
    with pytest.raises(PermissionDenied, match="internal quality assurer"):
        countersign_decision(session, cast.waiting, actor=cast.dana,
                             confirmation=sign_as(cast.dana), **LIMITS)
    session.rollback()
    assert session.get(CriterionDecision, cast.waiting.id).status == "awaiting_countersignature"
    # Where Dana is not the IQA, she countersigns like any qualified assessor.
    countersign_decision(session, cast.elsewhere, actor=cast.dana,
                         confirmation=sign_as(cast.dana), **LIMITS)
    session.commit()
    assert session.get(CriterionDecision, cast.elsewhere.id).status == "met"


def test_the_iqa_cannot_countersign_on_the_page(app, session):
    cast = make_dual(session)
    web = Browserless(app.test_client())
    web.login(cast.dana.email, PASSWORD)
    queue = web.client.get("/countersign").get_data(True)
    # The queue shows the decision but offers no box to tick for it, and says why.
    assert f'name="decision_ids" value="{cast.waiting.id}"' not in queue
    assert f'name="decision_ids" value="{cast.elsewhere.id}"' in queue
    assert "internal quality assurer" in queue
    refused = web.post(f"/decisions/{cast.waiting.id}/countersign",
                       {"password": PASSWORD, "typed_name": "Dana Dual"})
    assert refused.status_code == 403
    assert "cannot countersign" in refused.get_data(True)
    session.expire_all()
    assert session.get(CriterionDecision, cast.waiting.id).status == "awaiting_countersignature"


def test_the_iqa_cannot_countersign_through_the_api(app, session):
    cast = make_dual(session)
    _token, raw = create_api_token(session, cast.dana, "test")
    session.commit()
    client = app.test_client()
    refused = client.post(f"/api/v1/decisions/{cast.waiting.id}/countersign",
                          json={"password": PASSWORD, "typed_name": "Dana Dual"},
                          headers={"Authorization": f"Bearer {raw}"})
    assert refused.status_code == 403, refused.get_data(True)
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert "cannot countersign" in refused.get_json()["detail"]
    session.expire_all()
    assert session.get(CriterionDecision, cast.waiting.id).status == "awaiting_countersignature"


# --- plans, hand-added items and samples ----------------------------------------------------

def _dana_countersigned_then_became_iqa(session, cast: DualCast) -> CriterionDecision:
    """Dana countersigns in an enrolment she does not quality-assure; later she is made its
    IQA (a reassignment). The decision must stay out of everything she samples."""
    countersign_decision(session, cast.elsewhere, actor=cast.dana,
                         confirmation=sign_as(cast.dana), **LIMITS)
    cast.other_enrolment.iqa_id = cast.dana.id
    # And one from before the rule: countersigned by Dana in her own IQA enrolment.
    cast.waiting.status = "met"
    cast.waiting.countersigned_by_id = cast.dana.id
    session.commit()
    return cast.elsewhere


def test_no_plan_holds_a_decision_the_iqa_countersigned(session):
    cast = make_dual(session)
    _dana_countersigned_then_became_iqa(session, cast)
    today = date.today()
    plan = sampling.generate_plan(session, iqa=cast.dana, unit=cast.w.unit,
                                  start=today - timedelta(days=7), end=today)
    session.commit()
    held = {i.decision_id for i in plan.items}
    assert cast.elsewhere.id not in held and cast.waiting.id not in held
    assert sampling.plan_coverage(session, plan).excluded == 2
    assert sampling.addable_decisions(session, plan) == []
    # Adding one by hand (a forged form) is refused and writes nothing.
    with pytest.raises(ValidationFailed):
        sampling.add_item(session, plan, actor=cast.dana, decision_id=cast.elsewhere.id,
                          reason="Looks interesting")
    session.rollback()
    assert session.scalars(select(SamplingPlanItem).where(
        SamplingPlanItem.plan_id == plan.id)).all() == []
    assert sampling.reproduce(session, plan).same_items


def test_an_item_smuggled_into_a_plan_cannot_be_sampled(session):
    cast = make_dual(session)
    decision = _dana_countersigned_then_became_iqa(session, cast)
    today = date.today()
    plan = sampling.generate_plan(session, iqa=cast.dana, unit=cast.w.unit,
                                  start=today - timedelta(days=7), end=today)
    item = SamplingPlanItem(plan_id=plan.id, decision_id=decision.id,
                            enrolment_id=decision.enrolment_id, reason="written in SQL",
                            stage="interim", source="manual", added_by_id=cast.dana.id,
                            added_at=utcnow())
    session.add(item)
    session.commit()
    with pytest.raises(PermissionDenied, match="made or countersigned"):
        sampling.start_sample(session, item, actor=cast.dana)
    session.rollback()
    # A sample written straight into the table cannot have its outcome recorded either.
    sample = IqaSample(plan_item=item, decision_id=decision.id,
                       enrolment_id=decision.enrolment_id, iqa_id=cast.dana.id,
                       status="in_progress", started_at=utcnow(), snapshot={},
                       snapshot_sha256="0" * 64, rationale_md="")
    session.add(sample)
    session.commit()
    with pytest.raises(PermissionDenied, match="made or countersigned"):
        sampling.record_outcome(session, sample, actor=cast.dana, outcome="agree",
                                rationale_md="Fine.", actions=[],
                                confirmation=sign_as(cast.dana), today=today, **LIMITS)
    session.rollback()
    assert session.get(IqaSample, sample.id).status == "in_progress"
