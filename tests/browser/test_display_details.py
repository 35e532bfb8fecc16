"""Small things people see (issue 13, defect 13), checked in a real browser: the phone
caseload as cards with every column labelled, ruled Markdown tables, number inputs sized like
the other inputs, and times in the centre's zone rather than UTC."""

from __future__ import annotations

from portfolio.db import get_database
from tests.browser.conftest import login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import make_evidence, make_world

TABLE = "| Date | Call | Outcome |\n|---|---|---|\n| 5 Mar | Billing | Refund |\n"


def test_phone_caseload_tables_and_inputs(browser, make_app) -> None:
    app = make_app()
    s = get_database(app).sessionmaker()
    world = make_world(s, app.config["STORAGE_DIR"])
    item = make_evidence(s, world.enrolment, world.learner, maps=("1.1",), submit=True,
                         body=TABLE)
    s.commit()
    with serve(app) as base:
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        login(phone, base, world.assessor.email)
        phone.goto(f"{base}/caseload")
        row = phone.locator("table.table-cards tbody tr").first
        assert row.evaluate("r => getComputedStyle(r).display") == "block"
        assert row.bounding_box()["width"] <= 390
        for label in ("Unit", "Employer", "Criteria met", "Waiting for you", "Oldest waiting"):
            cell = row.locator(f'td[data-label="{label}"]')
            assert cell.is_visible(), label
            shown = cell.evaluate("c => getComputedStyle(c, '::before').content")
            assert label in shown, label
        assert_accessible(phone, 390)

        phone.goto(f"{base}/evidence/{item.id}")
        cell = phone.locator(".prose table td").first
        assert cell.evaluate("c => getComputedStyle(c).borderTopStyle") == "solid"
        text = phone.locator("main").inner_text()
        assert " UTC" not in text and (" GMT" in text or " BST" in text)
        phone.close()

        desk = browser.new_page(viewport={"width": 1280, "height": 900})
        login(desk, base, world.admin.email)
        desk.goto(f"{base}/iqa/strategy")
        box = desk.locator('input[type="number"]').first.bounding_box()
        assert box["width"] >= 80 and box["height"] >= 40
        desk.goto(f"{base}/admin/centre")
        assert_accessible(desk, 1280)
        desk.close()
