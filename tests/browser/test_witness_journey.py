"""Issue 5 round trip in a real browser: the learner asks, the witness answers by emailed link."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portfolio.db import get_database
from tests.browser.conftest import login, serve
from tests.factories import make_world
from tests.test_notify import _parse, _smtp_config, smtp_server  # noqa: F401 - fixture

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/w/[A-Za-z0-9_\-]+)")


@pytest.fixture
def site(make_app, smtp_server):  # noqa: F811 - the fixture above
    controller, handler = smtp_server
    app = make_app(**_smtp_config(controller))
    s = get_database(app).sessionmaker()
    world = make_world(s)
    learner = (world.learner.email, world.learner.full_name)
    s.close()
    with serve(app) as base_url:
        yield base_url, handler, learner


def test_witness_answers_through_the_emailed_link(browser, site) -> None:
    base, handler, (learner_email, learner_name) = site
    page = browser.new_context().new_page()
    login(page, base, learner_email)
    page.goto(f"{base}/")
    page.get_by_role("link", name=re.compile("^Unit 40")).first.click()
    page.get_by_role("link", name="Witnesses").click()
    form = page.locator("form", has=page.get_by_role("button", name="Send the request"))
    form.get_by_label("Witness's full name", exact=True).fill("Rachel Osei")
    form.get_by_label("Witness's work email", exact=True).fill("rachel.osei@work.example")
    form.get_by_label("Witness's job role", exact=True).fill("Team leader")
    form.get_by_label("Organisation", exact=True).fill("Acme Utilities")
    form.get_by_label("Relationship to the learner", exact=True).fill("Line manager")
    form.get_by_label("The activity they saw", exact=True).fill(
        "Handled a double-payment complaint.")
    form.get_by_label("When", exact=True).fill("2026-11-02")
    form.get_by_label("Where", exact=True).fill("Contact centre")
    form.get_by_label(re.compile(r"^2\.9 ")).check()
    form.get_by_role("button", name="Send the request").click()
    expect(page.locator(".flash").last).to_contain_text("Request sent to Rachel Osei")

    # The email arrived at a real SMTP server on loopback; the witness opens its link in a
    # browser that has never signed in.
    body = _parse(handler.envelopes[-1].content).get_content()
    link = LINK.search(body).group(1)
    witness = browser.new_context().new_page()
    witness.goto(link)
    expect(witness.get_by_role("heading", level=1)).to_have_text("Confirm what you saw")
    expect(witness.locator("main")).to_contain_text(learner_name)
    assert witness.locator("nav").count() == 0  # no way into the rest of the app
    witness.get_by_label("What you saw, in your own words").fill(
        "I sat beside them and heard them take ownership of the complaint, follow our "
        "procedure and log the outcome the same day.")
    witness.get_by_label(re.compile("does not name any customer")).check()
    witness.get_by_label("Sign by typing your full name").fill("Rachel Osei")
    witness.get_by_role("button", name="Sign and send").click()
    expect(witness.get_by_role("heading", level=1)).to_have_text("Thank you, Rachel Osei")
    witness.goto(link)
    expect(witness.locator("main")).to_contain_text("already been signed")

    page.reload()
    status = page.locator("section", has=page.get_by_role("heading",
                                                            name="Witness status list"))
    expect(status).to_contain_text("Rachel Osei")
    expect(status).to_contain_text("Team leader")
