"""End-to-end journeys in a real browser, each on its own fresh database and server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portfolio.models import Enrolment, User
from tests.browser.conftest import PHONE, login
from tests.factories import PASSWORD, make_user, make_world, unit40_spec

SIGN_IN_ERROR = "That email and password do not match an active account."
SAME_PERSON_ERROR = "The IQA must be a different person from the assessor"


def test_learner_reads_their_unit_criteria_and_guidance(page: Page, session, live_server):
    world = make_world(session)
    spec = unit40_spec()
    login(page, live_server, world.learner.email, PASSWORD)
    expect(page).to_have_url(f"{live_server}/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Units").click()
    expect(page).to_have_url(f"{live_server}/units")
    page.get_by_role("link", name=f"Unit {spec.unit.number}: {spec.unit.title}").click()
    expect(page).to_have_url(f"{live_server}/units/{world.unit.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Unit {spec.unit.number}: {spec.unit.title}")

    expect(page.locator("li.criterion")).to_have_count(17)
    assert len(spec.criteria) == 17
    expect(page.locator("section.outcome")).to_have_count(2)
    for lo in spec.learning_outcomes:
        expect(page.get_by_role("heading", level=2, name=re.compile(re.escape(lo.title)))
               ).to_be_visible()
    rules = page.get_by_role("region", name="How this unit is assessed")
    expect(rules.get_by_text("Simulation is not allowed", exact=True)).to_be_visible()

    # The first criterion with a tip of its own: its guidance is folded away until asked for.
    tip = next(g for g in spec.guidance if g.kind == "tip" and g.criteria)
    criterion = page.locator(f'li.criterion[id="ac-{tip.criteria[0]}"]')
    tip_text = criterion.get_by_text(tip.text, exact=True)
    expect(tip_text).to_be_hidden()
    details = criterion.locator("details").filter(
        has=page.locator("summary", has_text="Tips, pitfalls and what the assessor"))
    expect(details).not_to_have_attribute("open", "")
    details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    expect(tip_text).to_be_visible()


def _make_dual_role_person(session, world) -> User:
    """Someone who may act as assessor and as IQA, so the edit page offers the same person in
    both lists (nobody in make_world holds both roles)."""
    both = make_user(session, world.admin.centre, "assessor", "iqa", name="Bo Both",
                     email="both@example.org", assessor_status="qualified")
    session.commit()
    return both


def _iqa_equal_to_assessor_is_refused(page: Page, base_url: str, session, learner: User,
                                      both: User) -> None:
    """On the learner's enrolment edit page, choosing one person as assessor and IQA fails
    with a clear, linked error, and nothing about the enrolment changes."""
    page.goto(f"{base_url}/admin/enrolments")
    row = page.get_by_role("row", name=re.compile(learner.full_name))
    expect(row).to_have_count(1)
    before = row.inner_text()
    row.get_by_role("link", name=f"Edit enrolment of {learner.full_name}").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/admin/enrolments/\d+$"))
    edit_url = page.url
    page.get_by_label("Assessor").select_option(label=both.full_name)
    page.get_by_label("Internal quality assurer").select_option(label=both.full_name)
    page.get_by_label("Employer").fill("Changed Employer Ltd")
    with page.expect_response(edit_url) as response:
        page.get_by_role("button", name="Save changes").click()
    assert response.value.status == 422
    expect(page).to_have_url(edit_url)
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary.get_by_role("link")).to_have_text(
        re.compile(rf"^Internal quality assurer: {SAME_PERSON_ERROR}"))
    iqa_select = page.get_by_label("Internal quality assurer")
    expect(iqa_select).to_have_attribute("aria-invalid", "true")
    expect(iqa_select).to_have_accessible_description(re.compile(SAME_PERSON_ERROR))
    # The summary's link takes the user to the field to fix.
    summary.get_by_role("link").click()
    expect(iqa_select).to_be_focused()

    page.goto(f"{base_url}/admin/enrolments")
    expect(page.get_by_role("row", name=re.compile(learner.full_name))).to_have_text(before)
    session.expire_all()
    enrolment = session.scalar(select(Enrolment).where(Enrolment.learner_id == learner.id))
    assert both.id not in (enrolment.assessor_id, enrolment.iqa_id)
    assert enrolment.employer != "Changed Employer Ltd"


def test_admin_adds_a_person_and_enrols_them(page: Page, session, live_server, app,
                                             new_page):
    world = make_world(session)
    both = _make_dual_role_person(session, world)
    login(page, live_server, world.admin.email, PASSWORD)

    # Add a person.
    page.goto(f"{live_server}/admin/people")
    page.get_by_role("link", name="Add a person").click()
    expect(page).to_have_url(f"{live_server}/admin/people/new")
    page.get_by_label("Full name").fill("Nia Newcomer")
    page.get_by_label("Email address").fill("nia@example.org")
    roles = page.get_by_role("group", name="Roles")
    roles.get_by_role("checkbox", name="Learner", exact=True).check()
    # The admin never types a password: Nia is invited to choose her own.
    expect(page.get_by_label("Password")).to_have_count(0)
    page.get_by_role("button", name="Add and invite").click()
    expect(page).to_have_url(f"{live_server}/admin/people")
    expect(page.locator(".flash-success")).to_contain_text(
        "Nia Newcomer is invited: we emailed nia@example.org a link to choose their password")
    people = page.get_by_role("table", name=re.compile("^People in"))
    expect(people.get_by_role("row", name=re.compile("Nia Newcomer"))).to_contain_text("Learner")
    expect(people.get_by_role("row", name=re.compile("Nia Newcomer"))).to_contain_text("Invited")
    invitations = page.get_by_role("table", name="Invitations not accepted yet")
    expect(invitations.get_by_role("row", name=re.compile("Nia Newcomer"))).to_contain_text(
        "Works until")

    # Enrol them on Unit 40 with an assessor and an IQA.
    page.get_by_role("link", name="Enrolments").click()
    page.get_by_role("link", name="Enrol a learner").click()
    expect(page).to_have_url(f"{live_server}/admin/enrolments/new")
    page.get_by_label("Learner", exact=True).select_option(label="Nia Newcomer (nia@example.org)")
    page.get_by_label("Unit", exact=True).select_option(
        label=f"Unit 40: {world.unit.title} ({world.unit.reference})")
    page.get_by_label("Assessor").select_option(label=world.assessor.full_name)
    page.get_by_label("Internal quality assurer").select_option(label=world.iqa.full_name)
    page.get_by_label("Start date").fill("2026-02-02")
    page.get_by_label("Planned end date").fill("2026-11-27")
    page.get_by_label("Employer").fill("Northwind Water")
    page.get_by_label("Workplace").fill("Billing team")
    with page.expect_response(f"{live_server}/admin/enrolments/new") as posted:
        page.get_by_role("button", name="Enrol", exact=True).click()
    if posted.value.status != 302:
        pytest.fail(f"the enrolment was refused ({posted.value.status}): "
                    + page.get_by_role("alert").inner_text().replace("\n", " "))
    expect(page).to_have_url(f"{live_server}/admin/enrolments")
    expect(page.locator(".flash-success")).to_have_text("Nia Newcomer is enrolled on unit 40.")
    row = page.get_by_role("row", name=re.compile("Nia Newcomer"))
    expect(row).to_have_count(1)
    for text in ("Unit 40", world.assessor.full_name, world.iqa.full_name, "Northwind Water",
                 "02 Feb 2026", "Active"):
        expect(row).to_contain_text(text)

    # The IQA may not be the assessor: the edit page says so and saves nothing.
    nia = session.scalar(select(User).where(User.email == "nia@example.org"))
    _iqa_equal_to_assessor_is_refused(page, live_server, session, nia, both)

    # Nia opens the emailed link on her phone, chooses her password and signs in.
    mails = [p.read_text().replace("=\n", "")
             for p in Path(app.config["OUTBOX_DIR"]).glob("*.eml")]
    link = next(re.search(r"/reset/pwr_[A-Za-z0-9_-]+", m).group(0) for m in mails
                if "nia@example.org" in m and "/reset/" in m)
    phone = new_page(viewport=PHONE)
    phone.goto(live_server + link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Welcome, Nia Newcomer")
    phone.get_by_label("New password", exact=True).fill("nia's own long passphrase")
    phone.get_by_label("New password again").fill("nia's own long passphrase")
    phone.get_by_role("button", name="Set my password").click()
    expect(phone.locator(".flash-success")).to_contain_text("Welcome, Nia")
    phone.fill("#email", "nia@example.org")
    phone.fill("#password", "nia's own long passphrase")
    phone.locator("main form").get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("Hello, Nia")


def test_admin_cannot_make_the_assessor_the_iqa(page: Page, session, live_server):
    # The last step of the journey above on its own, so it runs while that test is blocked.
    world = make_world(session)
    both = _make_dual_role_person(session, world)
    login(page, live_server, world.admin.email, PASSWORD)
    _iqa_equal_to_assessor_is_refused(page, live_server, session, world.learner, both)


def test_wrong_password_then_sign_in_and_out(page: Page, session, live_server):
    world = make_world(session)
    login(page, live_server, world.learner.email, "not the password")
    expect(page).to_have_url(f"{live_server}/login")
    expect(page.get_by_role("alert")).to_contain_text(SIGN_IN_ERROR)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    login(page, live_server, world.learner.email, PASSWORD)
    expect(page).to_have_url(f"{live_server}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Lee")
    header = page.get_by_role("banner")
    header.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server}/login")
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    # The session really ended: the dashboard sends us back to sign in.
    page.goto(f"{live_server}/")
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server)}/login"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def _first_tab_goes_to_skip_link_then_main(page: Page) -> None:
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0 and box["width"] > 1, \
        "the focused skip link must be on screen"
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_skip_link_is_first_tab_stop_signed_out(page: Page, live_server):
    page.goto(f"{live_server}/login")
    _first_tab_goes_to_skip_link_then_main(page)


def test_skip_link_is_first_tab_stop_signed_in(page: Page, session, live_server):
    world = make_world(session)
    login(page, live_server, world.assessor.email, PASSWORD)
    expect(page).to_have_url(f"{live_server}/")
    _first_tab_goes_to_skip_link_then_main(page)
    # The next Tab continues from the main content, not from the header.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
