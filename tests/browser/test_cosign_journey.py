"""The end of a unit in a real browser: the assessor signs it off, the learner is notified,
co-signs from the to-do list on a phone, and the dashboard shows the unit as completed (axe at
both widths)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portfolio.db import get_database
from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import PASSWORD, make_world
from tests.sampling_setup import sign_off_whole_unit


def test_learner_cosigns_from_the_todo_list(browser, make_app, tmp_path) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    sign_off_whole_unit(s, world.enrolment, world.learner, world.assessor, cosign=False)
    learner_email, learner_name = world.learner.email, world.learner.full_name
    assessor_email = world.assessor.email
    s.close()
    with serve(app) as base:
        phone = browser.new_context(viewport=PHONE).new_page()
        login(phone, base, learner_email)
        # Told twice over: the bell, and the to-do list at the top of the dashboard.
        expect(phone.locator(".bell, [href$='/notifications']").first).to_contain_text(
            re.compile(r"\d"))
        todo = phone.locator("section.todo")
        expect(todo).to_contain_text("Co-sign Unit 40: your assessor has signed it off")
        phone.screenshot(path=str(tmp_path / "todo-phone.png"), full_page=True)
        assert_accessible(phone, PHONE["width"])
        todo.get_by_role("link", name=re.compile("^Co-sign Unit 40")).click()
        form = phone.locator("form", has=phone.get_by_role("button", name="Co-sign"))
        form.get_by_label("Your full name").fill(learner_name)
        form.get_by_label("Your password").fill(PASSWORD)
        form.get_by_role("button", name="Co-sign").click()
        expect(phone.locator(".flash").last).to_contain_text("The unit is complete")
        phone.goto(base + "/")
        card = phone.locator("li.card", has_text="Unit 40")
        expect(card.locator(".tag-completed")).to_have_text("Completed")
        expect(card.get_by_role("link", name="Export the signed portfolio")).to_be_visible()
        expect(card.get_by_role("link", name="Add evidence")).to_have_count(0)
        expect(phone.locator("section.todo")).to_contain_text("Nothing is waiting for you")
        phone.screenshot(path=str(tmp_path / "completed-phone.png"), full_page=True)
        assert_accessible(phone, PHONE["width"])

        desk = browser.new_context(viewport=DESKTOP).new_page()
        login(desk, base, assessor_email)
        expect(desk.locator("section.todo")).to_be_visible()
        desk.screenshot(path=str(tmp_path / "assessor-desktop.png"), full_page=True)
        assert_accessible(desk, DESKTOP["width"])
