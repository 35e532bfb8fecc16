"""A double click sends a form once (static/js/submit-once.js): a slow upload or a signing is
never recorded twice, and the clicked button's value still goes with the form."""

from __future__ import annotations

from sqlalchemy import func, select

from portfolio.db import get_database
from portfolio.models import Evidence, Signature
from tests.browser.conftest import login, serve
from tests.factories import PASSWORD, make_world


def test_a_double_click_records_and_signs_once(browser, make_app) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    s.commit()
    with serve(app) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, base, world.assessor.email)
        page.goto(f"{base}/enrolments/{world.enrolment.id}/evidence/new/observation")
        page.get_by_label("Title").fill("Observed at the counter")
        page.locator("#activity_on").fill("2026-11-30")
        page.get_by_label("What was observed").fill("Listened, apologised and put it right.")
        page.locator("input[name=criteria]").nth(8).check()
        page.locator("input[name=personal_data_confirmed]").check()
        page.get_by_label("Your full name").fill(world.assessor.full_name)
        page.get_by_label("Your password").fill(PASSWORD)
        page.get_by_role("button", name="Record and sign").dblclick()
        page.wait_for_url("**/evidence/*")
        page.wait_for_load_state("networkidle")
        assert "Recorded and signed" in page.locator(".flash").last.inner_text()
    s.expire_all()
    observations = s.scalar(select(func.count()).select_from(Evidence).where(
        Evidence.kind == "observation"))
    records = s.scalar(select(func.count()).select_from(Signature).where(
        Signature.purpose == "assessor_record"))
    assert observations == 1 and records == 1
    s.close()
