"""A centre admin imports learners from a spreadsheet on a phone: uploads a file with a good
row and a bad one, reads the problem in the preview (rows as cards, nothing scrolling
sideways), imports the good row only, and finds the new learner invited (issue 17)."""

from pathlib import Path

from tests.browser.conftest import DESKTOP, PHONE, login, serve
from tests.browser.test_accessibility import assert_accessible
from tests.factories import make_world

CSV = ("Name,Email,Employer,Workplace,Unit or qualification,Assessor email,IQA email,"
       "Start date,Planned end date\n"
       "Nia Newcomer,nia@example.org,Acme Utilities,Leeds,R/506/2151,assessor@example.org,"
       "iqa@example.org,01/09/2025,31/08/2026\n"
       "Bob Backwards,bob@example.org,Acme Utilities,Leeds,R/506/2151,assessor@example.org,,"
       "2025-09-01,2024-08-31\n")


def test_upload_preview_and_import_the_good_rows(app, session, new_page, tmp_path):
    world = make_world(session)
    session.commit()
    sheet = tmp_path / "new-learners.csv"
    sheet.write_text(CSV, encoding="utf-8")
    with serve(app) as base:
        page = new_page(viewport=PHONE)
        login(page, base, world.admin.email)
        page.goto(f"{base}/admin/people")
        page.get_by_role("link", name="Import from a spreadsheet").click()
        page.wait_for_load_state()
        assert_accessible(page, PHONE["width"])
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the template (CSV)").click()
        assert download.value.suggested_filename.endswith(".csv")
        page.get_by_label("CSV file").set_input_files(str(sheet))
        page.get_by_role("button", name="Check the file").click()
        page.wait_for_load_state()
        problems = page.get_by_role("region", name="Rows with problems")
        assert "Row 3" in problems.inner_text()
        assert "The planned end date is before the start date." in problems.inner_text()
        passing = page.get_by_role("region", name="Rows that pass")
        assert "Nia Newcomer" in passing.inner_text()
        assert "01 Sep 2025 to 31 Aug 2026" in passing.inner_text()
        # At phone width each row is a card with its labels, and nothing scrolls sideways.
        first_row = passing.locator("tbody tr").first
        assert first_row.evaluate("r => getComputedStyle(r).display") == "block"
        assert_accessible(page, PHONE["width"])
        page.set_viewport_size(DESKTOP)
        assert_accessible(page, DESKTOP["width"])
        page.get_by_role("button", name="Import only the good row").click()
        page.wait_for_load_state()
        assert "Imported 1 enrolment: 1 new person invited" in page.content()
        assert_accessible(page, DESKTOP["width"])
        page.get_by_role("link", name="See the people").click()
        page.wait_for_load_state()
        assert "Nia Newcomer" in page.content()
        assert "Bob Backwards" not in page.content()
    (mail,) = Path(app.config["OUTBOX_DIR"]).glob("*.eml")
    assert "Hello Nia Newcomer" in mail.read_text()
