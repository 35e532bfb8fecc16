"""IQA round trip in a real browser: plan, sample, disagree, the assessor responds, IQA closes."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from portfolio.db import get_database
from tests.browser.conftest import login
from tests.factories import PASSWORD, criterion, make_world
from tests.sampling_setup import make_decisions


@pytest.fixture
def world_ids(app):
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    make_decisions(s, world)
    ids = {"enrolment": world.enrolment.id, "criterion": criterion(s, "1.4").id}
    s.close()
    return ids


def _flash(page: Page) -> str:
    return page.locator(".flash").last.inner_text()


def test_plan_sample_disagree_respond_close(browser, live_server: str, world_ids) -> None:
    base = live_server
    iqa = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    assessor = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    login(iqa, base, "iqa@example.org")
    login(assessor, base, "assessor@example.org")

    # The IQA makes a plan for the last three months from the dashboard.
    iqa.get_by_role("link", name="Quality assurance").click()
    expect(iqa.get_by_role("heading", name="Internal quality assurance")).to_be_visible()
    iqa.get_by_role("button", name="Make the plan").click()
    assert re.search(r"Plan made: 4 decisions", _flash(iqa))
    expect(iqa.get_by_text(re.compile("^Reproducible"))).to_be_visible()

    # Takes one decision out by hand, then samples 1.4.
    iqa.get_by_text("Remove 1.6 for Lee Learner").click()
    iqa.get_by_label("Why take it out (1.6, Lee Learner)").fill("Sampled with 1.5 already")
    iqa.get_by_role("button", name="Take out of the plan (1.6, Lee Learner)").click()
    assert "Taken out of the plan" in _flash(iqa)
    iqa.get_by_role("button", name="Sample 1.4 for Lee Learner").click()
    expect(iqa.get_by_role("heading", name=re.compile("IQA sample: Lee Learner"))).to_be_visible()
    expect(iqa.get_by_text("What our complaints procedure says")).to_be_visible()

    # Disagrees, with an action for the assessor, and signs with password and full name.
    iqa.get_by_label("Disagree").check()
    iqa.get_by_label("Rationale").fill("The account **describes** the procedure but does not "
                                       "explain the techniques 1.4 asks for.")
    iqa.get_by_label("Action 1").fill("Re-assess 1.4 through a professional discussion.")
    iqa.get_by_label("Due by").first.fill((date.today() + timedelta(days=14)).isoformat())
    iqa.get_by_label("Your full name").fill("Ivy Iqa")
    iqa.get_by_label("Your password").fill("not my password")
    iqa.get_by_role("button", name="Sign the outcome").click()
    assert "not your password" in _flash(iqa)
    iqa.get_by_label("Your full name").fill("Ivy Iqa")
    iqa.get_by_label("Your password").fill(PASSWORD)
    iqa.get_by_role("button", name="Sign the outcome").click()
    assert "Signed: Disagree" in _flash(iqa)
    expect(iqa.get_by_text(re.compile("was reopened"))).to_be_visible()

    # The assessor, on a phone, finds the action on the dashboard, acknowledges and responds.
    assessor.goto(f"{base}/")
    heading = assessor.get_by_role("heading", name=re.compile("Actions from your IQA"))
    expect(heading).to_be_visible()
    assessor.get_by_role("link", name=re.compile("Re-assess 1.4")).click()
    assessor.get_by_role("button", name="Acknowledge action 1").click()
    assert "Acknowledged" in _flash(assessor)
    assessor.get_by_label("Your response").fill("Booked a professional discussion for Tuesday; "
                                                "1.4 will be decided again after it.")
    assessor.get_by_role("button", name="Send response to action 1").click()
    assert "Response sent" in _flash(assessor)
    # The criterion no longer counts as met: it needs deciding again.
    assessor.goto(f"{base}/enrolments/{world_ids['enrolment']}/criteria/{world_ids['criterion']}")
    expect(assessor.get_by_text(re.compile("no longer stands: the internal quality assurer Ivy "
                                           "Iqa disagreed with it"))).to_be_visible()

    # The IQA closes the action; the dashboard has nothing open.
    iqa.reload()
    iqa.get_by_label("Closing note (optional)").fill("Thank you.")
    iqa.get_by_role("button", name="Close action 1").click()
    assert "Action closed" in _flash(iqa)
    iqa.get_by_role("link", name="Quality assurance").click()
    expect(iqa.get_by_text("No open actions.")).to_be_visible()


@pytest.fixture
def signed_off_ids(app):
    from tests.sampling_setup import sign_off_whole_unit

    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    sign_off_whole_unit(s, world.enrolment, world.learner, world.assessor)
    ids = {"enrolment": world.enrolment.id}
    s.close()
    return ids


def test_sample_a_unit_sign_off_and_disagree(browser, live_server: str, app,
                                             signed_off_ids) -> None:
    from portfolio.assessment.services import unit_signoff
    from portfolio.models import Enrolment

    iqa = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    login(iqa, live_server, "iqa@example.org")
    iqa.goto(f"{live_server}/iqa")
    iqa.get_by_role("button", name="Sample the unit sign-off for Lee Learner").click()
    assert "Unit sample started" in _flash(iqa)
    expect(iqa.get_by_role("heading", name=re.compile("Sign-off IQA sample: Lee Learner"))
           ).to_be_visible()
    iqa.get_by_text("Evidence (1) and signatures for 2.3").click()
    expect(iqa.get_by_role("heading", name="Observed complaint handling").first).to_be_visible()
    iqa.get_by_label("Disagree").check()
    iqa.get_by_label("Rationale").fill("The observation does not show how 2.3 was met.")
    iqa.get_by_label("Your full name").fill("Ivy Iqa")
    iqa.get_by_label("Your password").fill(PASSWORD)
    iqa.get_by_role("button", name="Sign the outcome").click()
    assert "Signed: Disagree" in _flash(iqa)
    expect(iqa.get_by_text(re.compile("unit sign-off \\(and any co-signature\\) was ended"))
           ).to_be_visible()
    s = get_database(app).sessionmaker()
    enrolment = s.get(Enrolment, signed_off_ids["enrolment"])
    assert enrolment.status == "active" and unit_signoff(s, enrolment) is None
    s.close()
