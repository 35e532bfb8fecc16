"""A learner on a phone forgets their password, asks for a link, sets a new one (refused once
for being too short) and signs in with it (issue 17)."""

import re
from pathlib import Path

from tests.browser.conftest import PHONE, serve
from tests.factories import make_world


def test_forget_the_password_and_reset_it(app, session, new_page):
    world = make_world(session)
    session.commit()
    with serve(app) as base:
        page = new_page(viewport=PHONE)
        page.goto(f"{base}/login")
        page.get_by_role("link", name="Forgotten your password?").click()
        page.fill("#email", world.learner.email)
        page.get_by_role("button", name="Email me a link").click()
        mail = next(Path(app.config["OUTBOX_DIR"]).glob("*.eml")).read_text().replace("=\n", "")
        link = re.search(r"(/reset/pwr_[A-Za-z0-9_-]+)", mail).group(1)
        page.goto(base + link)
        page.fill("#new_password", "short")
        page.fill("#confirm_password", "short")
        page.get_by_role("button", name="Set the new password").click()
        assert "Use at least 12 characters" in page.content()
        page.fill("#new_password", "a long new passphrase")
        page.fill("#confirm_password", "a long new passphrase")
        page.get_by_role("button", name="Set the new password").click()
        page.wait_for_load_state()
        assert "Your password is set" in page.content()
        page.fill("#email", world.learner.email)
        page.fill("#password", "a long new passphrase")
        page.locator("main form").get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert "Hello" in page.content()
