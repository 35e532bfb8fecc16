"""Long lists are paged in SQL, keep their filters from page to page, and find people by name
or email (issue 16: the admin's lists and the IQA's home page listed thousands of rows)."""

from __future__ import annotations

import re

from tests.conftest import Browserless
from tests.factories import PASSWORD, make_enrolment, make_user, make_world


def _rows(html: str) -> int:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr>")


def _signed_in(app, email: str) -> Browserless:
    client = Browserless(app.test_client())
    assert client.login(email, PASSWORD).status_code == 302
    return client


def test_people_are_paged_and_found_by_name_or_email(app, session):
    world = make_world(session)
    centre = world.admin.centre
    for n in range(55):
        make_user(session, centre, "learner", name=f"Zed Paged {n:02d}",
                  email=f"paged{n:02d}@example.org")
    make_user(session, centre, "learner", name="Priya 100% Sharma", email="priya@example.org")
    session.commit()
    admin = _signed_in(app, world.admin.email)

    first = admin.client.get("/admin/people").get_data(as_text=True)
    total = first.split('<span class="count">', 1)[1].split("<", 1)[0]
    assert int(total) >= 62
    assert _rows(first) == 50
    assert 'rel="next"' in first and 'rel="prev"' not in first
    last = admin.client.get("/admin/people?page=2").get_data(as_text=True)
    assert _rows(last) == int(total) - 50 and 'rel="prev"' in last

    # Nonsense and out-of-range pages show a real page, never an error.
    assert admin.client.get("/admin/people?page=abc").status_code == 200
    beyond = admin.client.get("/admin/people?page=99999999999999").get_data(as_text=True)
    assert _rows(beyond) == _rows(last)

    found = admin.client.get("/admin/people?q=zed+paged+0").get_data(as_text=True)
    assert _rows(found) == 10 and "Zed Paged 07" in found and "Zed Paged 10" not in found
    assert _rows(admin.client.get("/admin/people?q=PRIYA@EXAMPLE").get_data(True)) == 1
    # The search text is matched literally: "%" is not a wildcard.
    assert _rows(admin.client.get("/admin/people?q=100%25").get_data(True)) == 1
    assert _rows(admin.client.get("/admin/people?q=e%25d").get_data(True)) == 0

    # The filter is kept when paging: 55 matches make two pages.
    paged = admin.client.get("/admin/people?q=zed").get_data(as_text=True)
    assert _rows(paged) == 50
    next_link = re.search(r'href="([^"]+)" rel="next"', paged).group(1).replace("&amp;", "&")
    assert "q=zed" in next_link
    assert _rows(admin.client.get(next_link).get_data(True)) == 5


def test_enrolments_are_paged_and_found_by_learner_or_employer(app, session):
    world = make_world(session)
    centre = world.admin.centre
    for n in range(52):
        learner = make_user(session, centre, "learner", name=f"Learner {n:02d}")
        make_enrolment(session, learner, world.assessor, world.iqa, world.unit,
                       employer="Northwind Water" if n < 3 else "Acme Utilities")
    session.commit()
    admin = _signed_in(app, world.admin.email)
    first = admin.client.get("/admin/enrolments").get_data(as_text=True)
    assert _rows(first) == 50 and 'rel="next"' in first
    found = admin.client.get("/admin/enrolments?q=northwind").get_data(as_text=True)
    assert _rows(found) == 3
    none = admin.client.get("/admin/enrolments?q=nobody-here").get_data(as_text=True)
    assert "No enrolment's learner or employer contains" in none
    # Another centre's enrolments never appear, whatever the search.
    foreign = admin.client.get(f"/admin/enrolments?q={world.foreign_learner.email}")
    assert "No enrolment's learner or employer contains" in foreign.get_data(True)


def test_the_iqa_and_assessor_home_lists_are_paged_separately(app, session):
    world = make_world(session)
    centre = world.admin.centre
    both = make_user(session, centre, "assessor", "iqa", assessor_status="qualified")
    for n in range(54):  # 27 assessed by this person, and 27 they quality-assure
        learner = make_user(session, centre, "learner", name=f"Home {n:02d}")
        if n < 27:
            make_enrolment(session, learner, both, world.iqa, world.unit)
        else:
            make_enrolment(session, learner, world.assessor, both, world.unit)
    session.commit()
    person = _signed_in(app, both.email)
    home = person.client.get("/").get_data(as_text=True)
    caseload, iqa = home.split('id="iqa-title"', 1)
    assert _rows(caseload) == 25 and _rows(iqa) == 25
    assert "?caseload=2" in caseload and "?iqa=2" in iqa
    second = person.client.get("/?iqa=2").get_data(as_text=True)
    caseload, iqa = second.split('id="iqa-title"', 1)
    assert _rows(caseload) == 25  # the caseload stays on its first page
    assert _rows(iqa) == 2  # 27 enrolments for this IQA
