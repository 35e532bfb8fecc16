"""Notifications in a real browser: the bell, the list (axe at both widths), opening one, and
choosing how often to be emailed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portfolio.db import get_database
from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import make_world


def test_learner_follows_the_bell_and_chooses_email(browser, make_app) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    learner = world.learner.email
    enrolment_id = world.enrolment.id
    s.close()
    with serve(app) as base:
        desk = browser.new_context(viewport=DESKTOP).new_page()
        login(desk, base, learner)
        bell = desk.get_by_role("link", name=re.compile(r"^Notifications, \d+ unread$"))
        expect(bell).to_be_visible()
        bell.click()
        expect(desk.get_by_role("heading", level=1)).to_contain_text("Notifications")
        assert_accessible(desk, DESKTOP["width"])
        desk.get_by_role("link", name=re.compile("^You were enrolled on unit 40")).click()
        assert desk.url.endswith(f"/enrolments/{enrolment_id}")
        expect(desk.get_by_role("link", name="Notifications, none unread")).to_be_visible()

        phone = browser.new_context(viewport=PHONE, storage_state=desk.context.storage_state()
                                    ).new_page()
        phone.goto(f"{base}/notifications")
        assert_accessible(phone, PHONE["width"])
        phone.get_by_label("As it happens").check()
        phone.get_by_role("button", name="Save email setting").click()
        expect(phone.locator(".flash").last).to_contain_text("as it happens")
        expect(phone.get_by_label("As it happens")).to_be_checked()
        assert_accessible(phone, PHONE["width"])
