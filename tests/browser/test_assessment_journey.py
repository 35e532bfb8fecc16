"""Issue 4 round trip in a real browser: review, refer back, accept, sign; revise; sign off."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portfolio.db import get_database
from portfolio.demo import seed_demo
from portfolio.evidence.storage import FileStore
from portfolio.models import Enrolment, User
from tests.browser.conftest import login
from tests.factories import PASSWORD, load_unit40


@pytest.fixture
def demo(app):
    """The demo centre, with every account's password set to the tests' PASSWORD."""
    from pathlib import Path

    s = get_database(app).sessionmaker()
    load_unit40(s)
    s.commit()
    with FileStore(Path(app.config["STORAGE_DIR"])).batch() as batch:
        seed_demo(s, PASSWORD, today=date.today(), batch=batch)
        batch.commit(s)
    learner = s.scalar(select(User).where(User.email == "learner@demo.example"))
    enrolment = s.scalar(select(Enrolment).where(Enrolment.learner_id == learner.id))
    ids = {"enrolment": enrolment.id}
    s.close()
    return ids


def _sign(page: Page, scope, name: str) -> None:
    scope.get_by_label("Your full name").fill(name)
    scope.get_by_label("Your password").fill(PASSWORD)


def test_review_refer_revise_and_sign_off(browser, live_server: str, demo) -> None:
    base = live_server
    enrolment = demo["enrolment"]
    assessor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    learner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(assessor, base, "assessor@demo.example")
    login(learner, base, "learner@demo.example")

    # The assessor opens the caseload, then the review queue of the demo learner.
    assessor.get_by_role("link", name="Caseload").click()
    assessor.get_by_role("link", name=re.compile("^Review Aisha Khan")).click()
    queue = assessor.locator("ol.evidence-list li")
    titles = [t.strip() for t in queue.locator("h2").all_inner_texts()]
    assert "Complaints procedure on the team board" in titles

    # Refer the photo back with feedback; accept everything else.
    for title in titles:
        assessor.goto(f"{base}/enrolments/{enrolment}/review")
        assessor.get_by_role("link", name=title, exact=True).click()
        review = assessor.locator("#review")
        if title == "Complaints procedure on the team board":
            review.get_by_label("Refer it back to the learner").check()
            review.get_by_label("Feedback for the learner").fill(
                "A photo of the procedure does not show you **explaining** it. Add a short "
                "account of how you use it.")
        else:
            review.get_by_label("Accept this evidence").check()
            for box in ("Valid", "Authentic", "Reliable", "Current", "Sufficient"):
                review.get_by_label(re.compile(f"^{box}:")).check()
        review.get_by_role("button", name="Record review").click()
        expect(assessor.locator(".flash").last).to_contain_text(
            "Referred back" if "procedure" in title else "Accepted")

    # Sign 2.8 (work products accepted) as met, with password and typed name.
    assessor.goto(f"{base}/enrolments/{enrolment}/coverage")
    assessor.locator(".matrix th[scope=row] a", has_text="2.8").click()
    panel = assessor.locator("section", has=assessor.get_by_role("heading",
                                                                   name="Assessor's decision"))
    _sign(assessor, panel, "Daniel Okafor")
    panel.get_by_label("Your password").fill("wrong password")
    panel.get_by_role("button", name=re.compile("is met")).click()
    expect(assessor.locator(".flash").last).to_contain_text("not your password")
    panel = assessor.locator("section", has=assessor.get_by_role("heading",
                                                                   name="Assessor's decision"))
    _sign(assessor, panel, "Daniel Okafor")
    panel.get_by_role("button", name=re.compile("is met")).click()
    expect(assessor.locator(".flash").last).to_contain_text("2.8 is met")
    expect(assessor.locator(".verdict-valid").first).to_be_visible()

    # The learner sees the feedback, revises the referred photo and resubmits it.
    learner.goto(f"{base}/enrolments/{enrolment}/evidence?status=referred")
    learner.get_by_role("link", name="Complaints procedure on the team board").click()
    expect(learner.locator(".review-referred")).to_contain_text("explaining")
    # The feedback leads the page, with the way to act on it.
    expect(learner.locator("#referral")).to_contain_text("explaining")
    learner.locator("#referral").get_by_role("link", name="revise it").click()
    learner.get_by_label("What it shows").fill(
        "The procedure on our board. I use it with every complaint: I log it the same day, "
        "give a reference and refer anything above my authority to my team leader.")
    learner.get_by_label(re.compile("I have removed customers")).check()
    learner.get_by_role("button", name="Save new version").click()
    expect(learner.locator(".flash").last).to_contain_text("version 2")
    learner.locator("summary", has_text="Submit for assessment").click()
    form = learner.locator("form.sign-form")
    _sign(learner, form, "Aisha Khan")
    form.get_by_role("button", name="Sign and submit").click()
    expect(learner.locator(".flash").last).to_contain_text("Submitted with your signed declaration")

    # The assessor was told by email (the demo outbox) and accepts the new version.
    assessor.goto(f"{base}/outbox")
    expect(assessor.locator("main")).to_contain_text("Evidence to review")
    assessor.goto(f"{base}/enrolments/{enrolment}/review")
    assessor.get_by_role("link", name="Complaints procedure on the team board",
                         exact=True).click()
    review = assessor.locator("#review")
    review.get_by_label("Accept this evidence").check()
    review.get_by_role("button", name="Record review").click()
    expect(assessor.locator(".flash").last).to_contain_text("Accepted")


def test_signed_off_demo_unit_shows_every_signature_valid(page: Page, live_server: str,
                                                          demo) -> None:
    login(page, live_server, "sofia@demo.example")
    page.get_by_role("link", name=re.compile("^Unit 40")).first.click()
    page.get_by_role("link", name="Sign-off").click()
    expect(page.locator(".callout-success")).to_contain_text("signed off")
    assert page.locator(".verdict-valid").count() >= 20
    assert page.locator(".verdict-broken").count() == 0


@pytest.fixture
def nearly_done(app):
    """A learner whose evidence is accepted for all 17 criteria and 16 of them are signed."""
    from tests.factories import accept, decide, make_evidence, make_world

    s = get_database(app).sessionmaker()
    world = make_world(s)
    all_but_28 = [f"1.{n}" for n in range(1, 9)] + [f"2.{n}" for n in range(1, 10) if n != 8]
    pd = make_evidence(s, world.enrolment, world.assessor, "professional_discussion",
                       title="Professional discussion", maps=tuple(all_but_28), submit=True)
    obs = make_evidence(s, world.enrolment, world.assessor, "observation",
                        title="Observation of logging a complaint", maps=("2.8",), submit=True)
    accept(s, pd, world.assessor)
    accept(s, obs, world.assessor)
    for number in all_but_28:
        if number != "2.9":
            decide(s, world.enrolment, world.assessor, number, [pd])
    decide(s, world.enrolment, world.assessor, "2.8", [obs])
    s.commit()
    ids = {"enrolment": world.enrolment.id, "learner": world.learner.email,
           "assessor": world.assessor.email, "learner_name": world.learner.full_name,
           "assessor_name": world.assessor.full_name}
    s.close()
    return ids


def test_unit_is_signed_off_by_both(browser, live_server: str, nearly_done) -> None:
    base, ids = live_server, nearly_done
    assessor = browser.new_context().new_page()
    learner = browser.new_context().new_page()
    login(assessor, base, ids["assessor"])
    login(learner, base, ids["learner"])
    enrolment = ids["enrolment"]

    assessor.goto(f"{base}/enrolments/{enrolment}/sign-off")
    expect(assessor.locator(".callout-warn")).to_contain_text("Not yet met: 2.9")

    # The last criterion, signed in the browser.
    assessor.goto(f"{base}/enrolments/{enrolment}/coverage")
    assessor.locator(".matrix th[scope=row] a", has_text="2.9").click()
    panel = assessor.locator("section", has=assessor.get_by_role("heading",
                                                                   name="Assessor's decision"))
    _sign(assessor, panel, ids["assessor_name"])
    panel.get_by_role("button", name=re.compile("is met")).click()
    expect(assessor.locator(".flash").last).to_contain_text("2.9 is met")

    # The learner declares the unit's evidence their own work.
    learner.goto(f"{base}/enrolments/{enrolment}/sign-off")
    section = learner.locator("section", has=learner.get_by_role(
        "heading", name="Your declaration of authenticity"))
    _sign(learner, section, ids["learner_name"])
    section.get_by_role("button", name="Sign the declaration").click()
    expect(learner.locator(".flash").last).to_contain_text("Declaration signed")

    # The assessor signs off, the learner co-signs.
    assessor.goto(f"{base}/enrolments/{enrolment}/sign-off")
    section = assessor.locator("section", has=assessor.get_by_role("heading",
                                                                     name="Sign the unit off"))
    _sign(assessor, section, ids["assessor_name"])
    section.get_by_role("button", name="Sign the unit off").click()
    expect(assessor.locator(".flash").last).to_contain_text("Unit signed off")

    learner.goto(f"{base}/enrolments/{enrolment}/sign-off")
    section = learner.locator("section", has=learner.get_by_role("heading",
                                                                   name="Co-sign your unit"))
    _sign(learner, section, ids["learner_name"])
    section.get_by_role("button", name="Co-sign").click()
    expect(learner.locator(".callout-success")).to_contain_text("signed off")
    assert learner.locator(".verdict-broken").count() == 0
    assert learner.locator(".verdict-invalidated").count() == 0
