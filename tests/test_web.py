"""Security headers, error pages, Markdown sanitising, and enrolment rules through the services."""

from __future__ import annotations

import re
from datetime import date

import pytest

from portfolio.enrolments.services import enrol_learner
from portfolio.errors import ValidationFailed
from portfolio.markdown import render_markdown
from tests.factories import PASSWORD, load_unit40, make_centre, make_user


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_of_signed_in_people_are_not_cached(app, session, web):
    user = make_user(session, make_centre(session))
    session.commit()
    web.login(user.email, PASSWORD)
    assert web.client.get("/").headers["Cache-Control"] == "no-store"


def test_friendly_404_and_405(client):
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Go to your dashboard" in missing.get_data(True)
    wrong_method = client.get("/logout")
    assert wrong_method.status_code == 405


def test_no_inline_script_or_style_in_pages(app, session, web):
    user = make_user(session, make_centre(session), "admin", "learner", "assessor")
    load_unit40(session)
    session.commit()
    web.login(user.email, PASSWORD)
    for url in ("/", "/units", "/units/1", "/account", "/admin/people", "/admin/people/new",
                "/admin/enrolments/new"):
        html = web.client.get(url).get_data(True)
        # Scripts only as files of our own (the CSP allows 'self'): never inline.
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert all(re.search(r'\bsrc="/static/js/[\w-]+\.js"', tag) for tag in scripts), scripts
        assert "style=" not in html and " on" + "click=" not in html


@pytest.mark.parametrize(("source", "forbidden"), [
    ("<script>alert(1)</script>", "<script"),
    ('<img src="https://evil.example/x.png">', "<img"),
    ("[x](javascript:alert(1))", "javascript:"),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
    ('<a href="#" onclick="steal()">x</a>', "onclick"),
    ("<iframe src=//evil.example></iframe>", "<iframe"),
])
def test_markdown_is_sanitised(source, forbidden):
    assert forbidden not in str(render_markdown(source))


def test_markdown_keeps_ordinary_formatting():
    html = str(render_markdown("## Heading\n\n- **bold** item\n- [link](https://example.org)"))
    assert "<h2>" in html and "<strong>bold</strong>" in html
    assert 'href="https://example.org"' in html and "noopener" in html


def test_enrolment_rules(session):
    unit = load_unit40(session)
    centre = make_centre(session)
    learner = make_user(session, centre, "learner")
    assessor = make_user(session, centre, "assessor")
    both = make_user(session, centre, "assessor", "iqa")
    elsewhere = make_user(session, make_centre(session), "iqa")
    not_assessor = make_user(session, centre, "learner")

    def enrol(**kw):
        args = dict(learner=learner, unit=unit, assessor=assessor, iqa=None,
                    start_on=date(2026, 1, 1), planned_end_on=date(2026, 6, 1),
                    employer="E", workplace="W")
        args.update(kw)
        return enrol_learner(session, **args)

    cases = [
        (dict(assessor=both, iqa=both), "different person from the assessor"),
        (dict(assessor=not_assessor), "not an active assessor"),
        (dict(iqa=elsewhere), "same centre"),
        (dict(planned_end_on=date(2025, 1, 1)), "on or after the start date"),
        (dict(employer="  "), "employer"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            enrol(**overrides)
    enrol(iqa=both)
    with pytest.raises(ValidationFailed, match="already enrolled"):
        enrol()
