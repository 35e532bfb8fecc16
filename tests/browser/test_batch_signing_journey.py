"""Signing a whole 17-criterion unit in a real browser, counting every click and typed field:
one criterion at a time (the old way, still there) against the batch page, side by side in the
same run. The counts are the README's figures; axe checks the batch page at both widths."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from portfolio.db import get_database
from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import PASSWORD, accept, make_enrolment, make_evidence, make_user, make_world
from tests.test_assessment import unit_numbers


class Counter:
    def __init__(self) -> None:
        self.clicks = 0
        self.typed = 0

    def click(self, locator) -> None:
        self.clicks += 1
        locator.click()

    def fill(self, locator, value: str) -> None:
        self.typed += 1
        locator.fill(value)


def _ready_unit(s, enrolment, learner, assessor) -> None:
    numbers = unit_numbers(s, enrolment)
    account = make_evidence(s, enrolment, learner, "reflective_account",
                            title="How I resolve complaints",
                            maps=tuple(n for n in numbers if n.startswith("1.")), submit=True)
    accept(s, account, assessor)
    observation = make_evidence(s, enrolment, assessor, "observation",
                                title="Observed complaint handling",
                                maps=tuple(n for n in numbers if n.startswith("2.")),
                                submit=True)
    accept(s, observation, assessor)


def test_a_whole_unit_costs_a_handful_of_actions(browser, make_app, tmp_path) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    second = make_user(s, world.learner.centre, "learner", email="second@example.org",
                       name="Sam Second")
    old_way = make_enrolment(s, second, world.assessor, world.iqa, world.unit)
    _ready_unit(s, world.enrolment, world.learner, world.assessor)
    _ready_unit(s, old_way, second, world.assessor)
    s.commit()
    name, email = world.assessor.full_name, world.assessor.email
    batch_id, old_id = world.enrolment.id, old_way.id
    s.close()
    with serve(app) as base:
        page = browser.new_context(viewport=DESKTOP).new_page()
        login(page, base, email)

        # Before: from the learner's coverage, one criterion page per criterion.
        before = Counter()
        page.goto(f"{base}/enrolments/{old_id}/coverage")
        for _ in range(17):
            row = page.locator("table.matrix tbody tr").filter(
                has_not=page.locator(".state-met")).first
            target = row.locator("th a")
            before.click(target)
            form = page.locator("form", has=page.get_by_role("button", name=re.compile("^Sign:")))
            before.fill(form.get_by_label("Your full name"), name)
            before.fill(form.get_by_label("Your password"), PASSWORD)
            before.click(form.get_by_role("button", name=re.compile("^Sign:")))
            expect(page.locator(".flash").last).to_contain_text("is met")
            before.click(page.get_by_role("link", name="← Coverage"))

        # After: from the dashboard's to-do list, one page, one signature.
        after = Counter()
        page.goto(base + "/")
        after.click(page.locator("section.todo").get_by_role(
            "link", name=re.compile("criteria with accepted evidence to decide")))
        expect(page).to_have_url(re.compile(rf"/enrolments/{batch_id}/decide$"))
        expect(page.locator("input[name=criterion_ids]:checked")).to_have_count(17)
        page.screenshot(path=str(tmp_path / "batch-desktop.png"), full_page=True)
        assert_accessible(page, DESKTOP["width"])
        after.fill(page.get_by_label("Your full name"), name)
        after.fill(page.get_by_label("Your password"), PASSWORD)
        after.click(page.get_by_role("button", name="Sign the ticked criteria"))
        expect(page.locator(".flash").last).to_contain_text("Signed 17 decisions")

        print(f"\nSIGN 17 CRITERIA: one at a time {before.clicks} clicks, {before.typed} typed;"
              f" batch {after.clicks} clicks, {after.typed} typed")
        assert (before.clicks, before.typed) == (51, 34)  # 3 clicks, 2 fields per criterion
        assert after.clicks <= 6 and after.typed <= 2

        phone = browser.new_context(viewport=PHONE).new_page()
        login(phone, base, email)
        phone.goto(f"{base}/enrolments/{old_id}/decide")
        expect(phone.get_by_text("No criterion is ready to decide")).to_be_visible()
        s = get_database(app).sessionmaker()
        third = make_user(s, world.learner.centre, "learner", email="third@example.org",
                          name="Tara Third")
        from portfolio.models import Enrolment, User

        assessor = s.get(User, world.assessor.id)
        unit_enrolment = s.get(Enrolment, batch_id)
        fresh = make_enrolment(s, third, assessor, s.get(User, world.iqa.id), unit_enrolment.unit)
        _ready_unit(s, fresh, third, assessor)
        s.commit()
        fresh_id = fresh.id
        s.close()
        phone.goto(f"{base}/enrolments/{fresh_id}/decide")
        expect(phone.locator("input[name=criterion_ids]:checked")).to_have_count(17)
        phone.screenshot(path=str(tmp_path / "batch-phone.png"), full_page=True)
        assert_accessible(phone, PHONE["width"])
