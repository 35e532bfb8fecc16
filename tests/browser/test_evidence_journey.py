"""A learner writes a reflective account, maps it, and watches coverage change (issue 3)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portfolio.db import get_database
from tests.browser.conftest import PHONE, login
from tests.factories import PASSWORD, make_world


@pytest.fixture
def world(app):
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    s.close()
    return world


def _gap_numbers(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(".gap-list .gap-head .ac-number").all_inner_texts()]


def test_learner_writes_maps_and_sees_coverage_change(page: Page, live_server: str, world):
    base = live_server
    login(page, base, world.learner.email)
    page.goto(f"{base}/enrolments/{world.enrolment.id}/coverage")
    before = _gap_numbers(page)
    assert "1.4" in before and "2.3" in before

    # Write a reflective account, with the live Markdown preview.
    page.goto(f"{base}/enrolments/{world.enrolment.id}")
    page.get_by_role("link", name="Add evidence").first.click()
    page.get_by_role("link", name=re.compile("^Reflective account")).click()
    page.get_by_label("Title").fill("Calming an upset customer")
    page.get_by_label("Date of the activity").fill("2026-10-01")
    page.get_by_label("Your account").fill("**Listened** first, then offered two options.")
    expect(page.locator("#body-preview strong")).to_have_text("Listened")
    page.get_by_label(re.compile("I have removed customers")).check()
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Calming an upset customer")

    # Map it to 1.4 (knowledge: counts) and 2.3 (performance: a reflective account cannot).
    page.get_by_label(re.compile(r"^1\.4 ")).check()
    page.get_by_label(re.compile(r"^2\.3 ")).check()
    page.get_by_role("button", name="Save mapping").click()
    expect(page.locator(".flash").last).to_contain_text("now mapped to 1.4, 2.3")
    page.locator("summary", has_text="Submit for assessment").click()
    form = page.locator("form.sign-form")
    form.get_by_label("Your full name").fill(world.learner.full_name)
    form.get_by_label("Your password").fill(PASSWORD)
    form.get_by_role("button", name="Sign and submit").click()
    expect(page.locator(".flash").last).to_contain_text("Submitted with your signed declaration")

    page.goto(f"{base}/enrolments/{world.enrolment.id}/coverage")
    after = _gap_numbers(page)
    assert "1.4" not in after  # now evidenced
    assert "2.3" in after
    gap = page.locator(".gap", has=page.locator(".ac-number", has_text="2.3"))
    expect(gap).to_contain_text("does not accept")
    matrix_row = page.locator("table.matrix tr", has=page.locator("th", has_text="1.4"))
    # Submitted, not yet accepted: the cell says it is waiting, never that it counts.
    expect(matrix_row.locator(".cell-waiting")).to_have_count(1)
    expect(matrix_row.locator(".cell-counts")).to_have_count(0)
    expect(matrix_row.locator(".state-evidenced")).to_have_count(1)


def test_learner_on_a_phone_maps_from_the_criterion_side(new_page, live_server: str, world):
    page = new_page(PHONE)
    base = live_server
    login(page, base, world.learner.email)
    page.goto(f"{base}/enrolments/{world.enrolment.id}/coverage")
    page.locator(".gap-head", has_text="1.1").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("monitoring techniques")
    page.get_by_label("Map more evidence").select_option(value=str(world.evidence_to_submit.id))
    page.get_by_label("Where in the evidence").fill("paragraph 1")
    page.get_by_role("button", name="Map to 1.1").click()
    expect(page.locator(".flash").last).to_contain_text("Mapped to 1.1")
    expect(page.locator("main")).to_contain_text("paragraph 1")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1
