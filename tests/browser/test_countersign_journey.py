"""A trainee's decision in a real browser: the countersigner opens the evidence it cites and
returns it with comments; the trainee follows the notification, decides again; the
countersigner countersigns (axe at both widths)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portfolio.db import get_database
from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import (
    PASSWORD,
    TINY_PDF,
    accept,
    decide,
    make_evidence,
    make_world,
    stage_bytes,
)


def _sign(form, name: str) -> None:
    form.get_by_label("Your full name").fill(name)
    form.get_by_label("Your password").fill(PASSWORD)


def test_returned_corrected_and_countersigned(browser, make_app, tmp_path) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    pdf = stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "rota.pdf")
    cited = make_evidence(s, world.other_enrolment, world.other_learner, "work_product",
                          title="Weekly rota", body="The rota I drew up for December.",
                          files=[pdf], maps=("2.8",), submit=True)
    accept(s, cited, world.trainee)
    decision = decide(s, world.other_enrolment, world.trainee, "2.8", [cited])
    s.commit()
    decision_id, trainee, assessor = decision.id, world.trainee, world.assessor
    trainee_email, trainee_name = trainee.email, trainee.full_name
    assessor_email, assessor_name = assessor.email, assessor.full_name
    s.close()
    with serve(app) as base:
        desk = browser.new_context(viewport=DESKTOP).new_page()
        login(desk, base, assessor_email)
        desk.goto(f"{base}/countersign")
        desk.get_by_role("link", name="Check the evidence for 2.8").click()
        expect(desk).to_have_url(re.compile(rf"/decisions/{decision_id}/review$"))
        expect(desk.locator(".cited")).to_contain_text("The rota I drew up for December.")
        expect(desk.locator(".cited")).to_contain_text("rota.pdf")
        desk.screenshot(path=str(tmp_path / "review-desktop.png"), full_page=True)
        assert_accessible(desk, DESKTOP["width"])
        desk.locator("summary", has_text="Return it to").click()
        box = desk.locator(".return-box form")
        box.get_by_label("What should they look at again?").fill(
            "Which week is this? Add the **dates** to the rota.")
        _sign(box, assessor_name)
        box.get_by_role("button", name=re.compile("^Return 2.8")).click()
        expect(desk.locator(".flash").last).to_contain_text("goes back to Tom Trainee")

        # The trainee is told, reads the comment, and decides again (on a phone).
        phone = browser.new_context(viewport=PHONE).new_page()
        login(phone, base, trainee_email)
        phone.goto(f"{base}/notifications")
        phone.get_by_role("link", name=re.compile("was returned to you")).click()
        callout = phone.locator("#returned")
        expect(callout).to_contain_text("Returned with comments")
        expect(callout.locator("strong", has_text="dates")).to_be_visible()
        phone.screenshot(path=str(tmp_path / "returned-phone.png"), full_page=True)
        assert_accessible(phone, PHONE["width"])
        form = phone.locator("form", has=phone.get_by_role("button", name="Sign: 2.8 is met"))
        form.get_by_label("Note (optional)").fill("Dates added: week of 1 December.")
        _sign(form, trainee_name)
        form.get_by_role("button", name="Sign: 2.8 is met").click()
        expect(phone.locator(".flash").last).to_contain_text("countersignature")

        # Back to the countersigner, who reads it again and countersigns.
        desk.goto(f"{base}/countersign")
        desk.get_by_role("link", name="Check the evidence for 2.8").click()
        expect(desk.locator("#decision-title + p + .prose")).to_contain_text("Dates added")
        sign = desk.locator("form", has=desk.get_by_role("button", name="Countersign 2.8"))
        _sign(sign, assessor_name)
        sign.get_by_role("button", name="Countersign 2.8").click()
        expect(desk.locator(".flash").last).to_contain_text("is now met")
        phone.goto(f"{base}/countersign")
        assert_accessible(phone, PHONE["width"])
        expect(phone.get_by_role("heading", name=re.compile("Returned to you"))).to_have_count(0)
