"""A conversation on an evidence item in a real browser: the assessor asks, the learner is
notified, reads it on the evidence page and replies, the assessor sees who has read it (axe at
both widths)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portfolio.db import get_database
from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import make_world


def test_assessor_and_learner_talk_about_the_evidence(browser, make_app) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    assessor, learner = world.assessor.email, world.learner.email
    path = f"/evidence/{world.evidence.id}"
    s.close()
    with serve(app) as base:
        desk = browser.new_context(viewport=DESKTOP).new_page()
        login(desk, base, assessor)
        desk.goto(base + path)
        thread = desk.locator("#comments")
        expect(thread).to_contain_text("No comments yet.")
        thread.get_by_label("Add a comment").fill(
            "Good letter. Could you add **the date you sent it**?\n\n- the date\n- who signed it")
        thread.get_by_role("button", name="Send comment").click()
        expect(desk.locator("#comments .comment")).to_have_count(1)
        first = desk.locator("#comments .comment").first
        expect(first.locator("strong", has_text="the date you sent it")).to_be_visible()
        expect(first).to_contain_text("Not seen yet by Lee Learner and Ivy Iqa")
        expect(thread.get_by_label("Add a comment")).to_have_value("")

        # The learner is told (a notification made from the audit event) and follows it.
        phone = browser.new_context(viewport=PHONE).new_page()
        login(phone, base, learner)
        phone.goto(f"{base}/notifications")
        phone.get_by_role("link", name=re.compile("^Asha Assessor commented on")).click()
        assert re.search(rf"{path}#comment-\d+$", phone.url), phone.url
        mine = phone.locator("#comments")
        expect(mine.locator(".comment").first).to_contain_text("Asha Assessor")
        expect(mine.locator(".comment").first).to_contain_text("New")
        assert_accessible(phone, PHONE["width"])
        mine.get_by_label("Add a comment").fill("Sent on 3 November, signed by my manager.")
        mine.get_by_role("button", name="Send comment").click()
        expect(phone.locator("#comments .comment")).to_have_count(2)
        expect(phone.locator("#comments .comment").last).to_contain_text(
            "Not seen yet by Asha Assessor and Ivy Iqa")

        desk.reload()
        comments = desk.locator("#comments .comment")
        expect(comments).to_have_count(2)
        expect(comments.first).to_contain_text("Seen by Lee Learner")
        expect(comments.last).to_contain_text("Sent on 3 November")
        expect(comments.last).to_contain_text("New")
        assert_accessible(desk, DESKTOP["width"])
