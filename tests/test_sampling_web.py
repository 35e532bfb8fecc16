"""IQA sampling pages: plan, sample as it was, signed outcome, actions, notifications."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from portfolio.models import CriterionDecision, IqaAction, IqaSample, SamplingPlan
from tests.factories import PASSWORD, make_world
from tests.sampling_setup import make_sampling

TODAY = date.today()


def _login(web, email):
    web.client = web.client.application.test_client()  # a fresh browser: signed out
    page = web.client.get("/login")
    from tests.conftest import csrf_from

    return web.client.post("/login", data={"email": email, "password": PASSWORD,
                                           "csrf_token": csrf_from(page.get_data(True))})


def _world(app, session):
    world = make_world(session, app.config["STORAGE_DIR"])
    world.sampling = make_sampling(session, world)
    return world


def test_iqa_dashboard_strategy_and_plan_pages(app, session, web):
    world = _world(app, session)
    _login(web, world.iqa.email)
    home = web.client.get("/iqa").get_data(True)
    assert "Ready to sample" in home and "Asha Assessor" in home
    assert "Quality assurance" in web.client.get("/").get_data(True)  # in the nav
    plan = web.client.get(f"/iqa/plans/{world.sampling.plan_id}").get_data(True)
    assert "Reproducible" in plan and "Coverage" in plan and "Acme Utilities" in plan
    strategy = web.client.get("/iqa/strategy").get_data(True)
    assert "Trainee assessor (every decision)" in strategy
    response = web.post(f"/iqa/strategy/{world.unit.id}", {
        "trainee": "100", "newly_qualified": "100", "first_year": "30", "experienced": "15",
        "after_disagreement": "100", "rpl": "100", "reason": "EQA visit advice"})
    assert response.status_code == 302
    history = web.client.get("/iqa/strategy").get_data(True)
    assert "EQA visit advice" in history and "Ivy Iqa" in history
    bad = web.post(f"/iqa/strategy/{world.unit.id}", {"trainee": "150", "reason": "x"})
    assert bad.status_code == 422 and "whole percentage" in bad.get_data(True)


def test_generate_a_plan_from_the_dashboard(app, session, web):
    world = _world(app, session)
    _login(web, world.iqa.email)
    response = web.post("/iqa/plans", {"unit_id": str(world.unit.id),
                                       "period_start": (TODAY - timedelta(days=3)).isoformat(),
                                       "period_end": TODAY.isoformat()})
    assert response.status_code == 302
    plans = session.scalars(select(SamplingPlan).order_by(SamplingPlan.id)).all()
    assert len(plans) == 2 and plans[1].generated_ids  # undecided ones are not in it
    wrong = web.post("/iqa/plans", {"unit_id": str(world.unit.id), "period_start": "2026-05-01",
                                    "period_end": "2026-04-01"})
    assert wrong.status_code == 422 and "on or after" in wrong.get_data(True)
    # Malformed fields are named in words, never a server error; nothing is made.
    for bad, words in (({"unit_id": "x"}, "Choose one of the units"),
                       ({"unit_id": str(world.unit.id), "period_start": "yesterday"},
                        "first and last days"),
                       ({"unit_id": "99999999999999999999"}, "Choose one of the units")):
        response = web.post("/iqa/plans", {"period_start": "2026-04-01",
                                           "period_end": "2026-05-01", **bad})
        assert response.status_code == 422 and words in response.get_data(True), bad
    assert len(session.scalars(select(SamplingPlan)).all()) == 2


def test_round_trip_disagree_respond_close(app, session, web):
    world = _world(app, session)
    ids = world.sampling
    _login(web, world.iqa.email)
    page = web.client.get(f"/iqa/samples/{ids.open_sample_id}").get_data(True)
    assert "What our complaints procedure says" in page and "Sign the outcome" in page
    wrong = web.post(f"/iqa/samples/{ids.open_sample_id}/outcome", {
        "outcome": "disagree", "rationale_md": "Not enough on 1.4.",
        "typed_name": "Ivy Iqa", "password": "not my password"})
    assert wrong.status_code == 422
    assert session.get(IqaSample, ids.open_sample_id).status == "in_progress"
    due = (TODAY + timedelta(days=10)).isoformat()
    done = web.post(f"/iqa/samples/{ids.open_sample_id}/outcome", {
        "outcome": "disagree", "rationale_md": "Not enough on 1.4.",
        "action_description": ["Re-assess 1.4 with a professional discussion.", ""],
        "action_due_on": [due, ""], "typed_name": "Ivy Iqa", "password": PASSWORD})
    assert done.status_code == 302
    session.expire_all()
    sample = session.get(IqaSample, ids.open_sample_id)
    assert sample.outcome == "disagree"
    assert session.get(CriterionDecision, sample.decision_id).status == "reopened"
    outbox = Path(app.config["OUTBOX_DIR"])
    mails = [p.read_text() for p in outbox.glob("*.eml")]
    assert any("IQA sample outcome: Disagree" in m and "assessor@example.org" in m
               for m in mails)
    decision = session.get(CriterionDecision, sample.decision_id)
    criterion_page = web.client.get(f"/enrolments/{world.enrolment.id}/criteria/"
                                    f"{decision.criterion_id}").get_data(True)
    assert "no longer stands" in criterion_page and "disagreed" in criterion_page
    # The assessor sees the action on the caseload, acknowledges and responds.
    action = session.scalars(select(IqaAction).where(IqaAction.sample_id == sample.id)).one()
    _login(web, world.assessor.email)
    caseload = web.client.get("/caseload").get_data(True)
    assert "Actions from your IQA" in caseload and "Re-assess 1.4" in caseload
    assert web.post(f"/iqa/actions/{action.id}/respond", {"text_md": "Too early"}
                    ).status_code == 409
    assert web.post(f"/iqa/actions/{action.id}/acknowledge").status_code == 302
    assert web.post(f"/iqa/actions/{action.id}/respond",
                    {"text_md": "Booked a discussion for Tuesday."}).status_code == 302
    assert web.post(f"/iqa/actions/{action.id}/close").status_code == 403
    _login(web, world.iqa.email)
    assert web.post(f"/iqa/actions/{action.id}/close", {"text_md": "Thanks"}).status_code == 302
    session.expire_all()
    assert session.get(IqaAction, action.id).status == "closed"
    page = web.client.get(f"/iqa/samples/{sample.id}").get_data(True)
    assert "Booked a discussion for Tuesday." in page and "Closed" in page


def test_sample_page_shows_the_snapshot_not_the_portfolio_now(app, session, web):
    world = _world(app, session)
    sample = session.get(IqaSample, world.sampling.completed_sample_id)
    _login(web, world.iqa.email)
    before = web.client.get(f"/iqa/samples/{sample.id}").get_data(True)
    assert "What our complaints procedure says" in before
    # Someone alters the evidence version in the database directly: the sample does not move.
    from portfolio.models import EvidenceVersion

    version = session.scalars(select(EvidenceVersion).where(
        EvidenceVersion.title == "What our complaints procedure says")).one()
    version.title = "Changed later"
    session.commit()
    after = web.client.get(f"/iqa/samples/{sample.id}").get_data(True)
    assert "What our complaints procedure says" in after and "Changed later" not in after
    assert "bound by its SHA-256" in after
    # Editing the stored snapshot itself is detected by its hash.
    sample.snapshot = dict(sample.snapshot, enrolment=dict(sample.snapshot["enrolment"],
                                                           learner="Somebody Else"))
    session.commit()
    altered = web.client.get(f"/iqa/samples/{sample.id}").get_data(True)
    assert "This snapshot has been altered" in altered


def test_readiness_and_dashboard_list_open_actions(app, session, web):
    world = _world(app, session)
    _login(web, world.assessor.email)
    home = web.client.get("/").get_data(True)
    assert "Actions from your IQA" in home
    report = web.client.get(f"/enrolments/{world.enrolment.id}/readiness")
    assert report.status_code == 200
    html = report.get_data(True)
    assert "IQA action due" in html and "Asha Assessor (action owner)" in html
    assert re.search(r'href="/iqa/samples/\d+">Acknowledge it, do it', html)


def test_an_iqa_cannot_sample_a_decision_they_made_through_the_pages(app, session, web):
    # The assessor made the decisions, then became this learner's IQA at a hand-over.
    from portfolio.models import Enrolment, SamplingPlanItem, UserRole

    world = make_world(session, app.config["STORAGE_DIR"])
    from tests.sampling_setup import make_decisions

    make_decisions(session, world)
    session.add(UserRole(user_id=world.assessor.id, role="iqa"))
    enrolment = session.get(Enrolment, world.enrolment.id)
    enrolment.assessor_id, enrolment.iqa_id = world.trainee.id, world.assessor.id
    session.commit()
    _login(web, world.assessor.email)
    made = web.post("/iqa/plans", {"unit_id": str(world.unit.id),
                                   "period_start": (TODAY - timedelta(days=3)).isoformat(),
                                   "period_end": TODAY.isoformat()})
    assert made.status_code == 302
    plan = session.scalars(select(SamplingPlan)).one()
    assert plan.generated_ids == []  # their own four decisions are left out
    page = web.client.get(f"/iqa/plans/{plan.id}").get_data(True)
    assert "4 of your own decisions left out" in page
    decision = session.scalars(select(CriterionDecision).where(
        CriterionDecision.enrolment_id == enrolment.id)).first()
    item = SamplingPlanItem(plan_id=plan.id, decision_id=decision.id, enrolment_id=enrolment.id,
                            reason="forced in", stage="interim", source="manual",
                            added_by_id=world.assessor.id)
    session.add(item)
    session.commit()
    refused = web.post(f"/iqa/items/{item.id}/sample")
    assert refused.status_code == 403, re.findall("flash-error.>([^<]*)", refused.get_data(True))
    assert session.scalars(select(IqaSample)).all() == []


def test_sample_a_signed_off_unit_from_the_dashboard_and_disagree(app, session, web):
    from portfolio.assessment.services import unit_signoff
    from portfolio.models import Enrolment
    from tests.sampling_setup import sign_off_whole_unit

    world = _world(app, session)
    signoff = sign_off_whole_unit(session, world.enrolment, world.learner, world.assessor)
    _login(web, world.iqa.email)
    home = web.client.get("/iqa").get_data(True)
    assert "Signed-off units to sample" in home and "Sample the unit sign-off" in home
    # Not this IQA's enrolment: as if it did not exist.
    assert web.post(f"/iqa/enrolments/{world.other_enrolment.id}/unit-sample"
                    ).status_code == 404
    started = web.post(f"/iqa/enrolments/{world.enrolment.id}/unit-sample")
    assert started.status_code == 302
    sample = session.scalars(select(IqaSample).where(IqaSample.scope == "unit")).one()
    assert sample.signoff_id == signoff.id
    # Pressing the button again opens the same sample.
    again = web.post(f"/iqa/enrolments/{world.enrolment.id}/unit-sample")
    assert again.headers["Location"].endswith(f"/iqa/samples/{sample.id}")
    page = web.client.get(f"/iqa/samples/{sample.id}").get_data(True)
    assert "Sign-off IQA sample: Lee Learner" in page and "Decisions and evidence" in page
    assert "How I resolve complaints" in page and "Observed complaint handling" in page
    assert "Your outcome for the unit sign-off" in page
    home = web.client.get("/iqa").get_data(True)
    assert "No signed-off unit is waiting to be sampled." in home and "Unit sign-off ·" in home
    done = web.post(f"/iqa/samples/{sample.id}/outcome", {
        "outcome": "disagree", "rationale_md": "2.3 is not shown by the observation.",
        "typed_name": "Ivy Iqa", "password": PASSWORD})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(IqaSample, sample.id).outcome == "disagree"
    assert unit_signoff(session, world.enrolment) is None
    assert session.get(Enrolment, world.enrolment.id).status == "active"
    mails = [p.read_text() for p in Path(app.config["OUTBOX_DIR"]).glob("*.eml")]
    assert any("IQA sample outcome: Disagree" in m and "sign-off of unit" in m
               and "assessor@example.org" in m for m in mails)
    page = web.client.get(f"/iqa/samples/{sample.id}").get_data(True)
    assert "the unit sign-off (and any co-signature) was ended" in page
    # The assessor who signed off reads it; the learner cannot.
    _login(web, world.assessor.email)
    assert web.client.get(f"/iqa/samples/{sample.id}").status_code == 200
    _login(web, world.learner.email)
    assert web.client.get(f"/iqa/samples/{sample.id}").status_code == 404


def test_a_unit_without_a_signoff_cannot_be_sampled_through_the_pages(app, session, web):
    world = _world(app, session)
    _login(web, world.iqa.email)
    refused = web.post(f"/iqa/enrolments/{world.enrolment.id}/unit-sample")
    assert refused.status_code == 409 and "no sign-off that stands" in refused.get_data(True)
    assert session.scalars(select(IqaSample).where(IqaSample.scope == "unit")).all() == []
