"""Long lists are paged in SQL by keyset, keep their filters from page to page, and find people
by name or email (issues 14 and 16: the admin's lists and the IQA's home page list thousands of
rows, so no page may cost an OFFSET scan or a COUNT past the first)."""

from __future__ import annotations

import html
import re

from sqlalchemy import event

from portfolio.db import get_database
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_enrolment, make_user, make_world


def _body(page: str) -> str:
    return page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


def _rows(page: str) -> int:
    return _body(page).count("<tr>")


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', page)
    return html.unescape(found.group(1)) if found else None


def _signed_in(app, email: str) -> Browserless:
    client = Browserless(app.test_client())
    assert client.login(email, PASSWORD).status_code == 302
    return client


def _names(page: str, prefix: str) -> list[str]:
    return re.findall(rf"({re.escape(prefix)}[^<\"]*)<", _body(page))


def test_people_walk_every_row_once_in_order_with_ties_and_inserts(app, session):
    world = make_world(session)
    centre = world.admin.centre
    # 120 people, in ties of three on the sort name: only the id tells them apart.
    for n in range(120):
        make_user(session, centre, "learner", name=f"Zed Paged {n // 3:02d}",
                  email=f"paged{n:03d}@example.org")
    session.commit()
    admin = _signed_in(app, world.admin.email)

    url: str | None = "/admin/people?q=zed+paged"
    seen: list[str] = []
    pages = []
    while url:
        page = admin.client.get(url).get_data(as_text=True)
        pages.append((url, page))
        seen += re.findall(r"paged\d{3}@example\.org", _body(page))
        if len(pages) == 1:
            # Someone is added between two clicks, sorting before the next page starts:
            # it is not shown (it belongs on a page already seen) and nothing shifts.
            make_user(session, centre, "learner", name="Zed Paged 00", email="late@example.org")
            session.commit()
        url = _link(page, "next")
        if url:
            assert "q=zed+paged" in url  # the search is kept
    assert len(pages) == 3
    assert sorted(seen) == [f"paged{n:03d}@example.org" for n in range(120)]
    assert len(set(seen)) == 120
    # Name order, the id breaking the ties.
    assert seen == sorted(seen, key=lambda e: (int(e[5:8]) // 3, int(e[5:8])))
    # The first page counts the list (once); later pages do not, and link to the first.
    first = pages[0][1]
    assert '<span class="count">120</span>' in first and _link(first, "prev") is None
    last = pages[-1][1]
    assert _rows(last) == 20 and _link(last, "next") is None
    assert _link(last, "first") == "/admin/people?q=zed+paged"
    assert '<span class="count">' not in last.split("<h1", 1)[1].split("</h1>", 1)[0]

    # Previous walks back page by page to the first page (which shows as the first again).
    back = admin.client.get(_link(last, "prev")).get_data(as_text=True)
    assert _names(back, "Zed Paged ") == _names(pages[1][1], "Zed Paged ")
    again = admin.client.get(_link(back, "prev")).get_data(as_text=True)
    # 51 rows now come before the second page: one more step back reaches the first page.
    assert _rows(again) == 50 and _link(again, "prev")
    again = admin.client.get(_link(again, "prev")).get_data(as_text=True)
    assert _link(again, "prev") is None and _link(again, "first") is None
    assert "late@example.org" in again
    assert '<span class="count">121</span>' in again  # now with the one added meanwhile


def test_people_search_is_literal_and_malformed_cursors_are_400(app, session):
    world = make_world(session)
    make_user(session, world.admin.centre, "learner", name="Priya 100% Sharma",
              email="priya@example.org")
    session.commit()
    admin = _signed_in(app, world.admin.email)
    assert _rows(admin.client.get("/admin/people?q=PRIYA@EXAMPLE").get_data(True)) == 1
    assert _rows(admin.client.get("/admin/people?q=100%25").get_data(True)) == 1
    assert _rows(admin.client.get("/admin/people?q=e%25d").get_data(True)) == 0
    for bad in ("abc", "a", "x" + "e30", "a!!!", "aWzE", "aWyJ4Il0", "aWyJ4IiwieSJd",
                "aWyJ4Iix0cnVlXQ", "a" + "A" * 3000, "aWzEsMl0", "b99999999999999"):
        response = admin.client.get(f"/admin/people?page={bad}")
        assert response.status_code == 400, bad
        assert "Page link not valid" in response.get_data(as_text=True)


def test_enrolments_are_paged_and_found_by_learner_or_employer(app, session):
    world = make_world(session)
    centre = world.admin.centre
    for n in range(52):
        learner = make_user(session, centre, "learner", name=f"Learner {n // 2:02d}")
        make_enrolment(session, learner, world.assessor, world.iqa, world.unit,
                       employer="Northwind Water" if n < 3 else "Contoso Pipes")
    session.commit()
    admin = _signed_in(app, world.admin.email)
    url: str | None = "/admin/enrolments?q=contoso"
    names: list[str] = []
    rows = 0
    while url:
        page = admin.client.get(url).get_data(as_text=True)
        names += _names(page, "Learner ")
        rows += _rows(page)
        url = _link(page, "next")
    assert rows == 49 and names == sorted(names)
    assert admin.client.get("/admin/enrolments?page=bnot-a-cursor").status_code == 400
    found = admin.client.get("/admin/enrolments?q=northwind").get_data(as_text=True)
    assert _rows(found) == 3 and _link(found, "next") is None
    none = admin.client.get("/admin/enrolments?q=nobody-here").get_data(as_text=True)
    assert "No enrolment's learner or employer contains" in none
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
    assert "?caseload=a" in caseload and "?iqa=a" in iqa
    second = person.client.get(_link(iqa, "next")).get_data(as_text=True)
    caseload, iqa = second.split('id="iqa-title"', 1)
    assert _rows(caseload) == 25  # the caseload stays on its first page
    assert _names(iqa, "Home ") == ["Home 52", "Home 53"]
    assert person.client.get("/?iqa=a%25").status_code == 400


def test_a_page_costs_the_same_statements_however_long_the_list(app, session):
    world = make_world(session)
    centre = world.admin.centre
    admin = _signed_in(app, world.admin.email)
    engine = get_database(app).engine

    def statements(url: str) -> tuple[int, str]:
        seen: list[str] = []
        offsets: list[int] = []

        def count(_conn, _cursor, statement, parameters, *_args) -> None:
            seen.append(statement)
            if " OFFSET " in statement.upper():  # SQLite writes "OFFSET 0" after every LIMIT
                offsets.append(list(parameters)[-1])

        event.listen(engine, "before_cursor_execute", count)
        try:
            page = admin.client.get(url).get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert set(offsets) <= {0}, url
        return len(seen), page

    def add(n: int) -> None:
        for i in range(n):
            learner = make_user(session, centre, "learner", name=f"Count {i:03d}")
            make_enrolment(session, learner, world.assessor, world.iqa, world.unit)
        session.commit()

    add(60)
    small = {}
    for url in ("/admin/people", "/admin/enrolments"):
        n, first = statements(url)
        m, _ = statements(_link(first, "next"))
        small[url] = (n, m)
    add(140)
    for url in ("/admin/people", "/admin/enrolments"):
        n, first = statements(url)
        second = statements(_link(first, "next"))
        assert (n, second[0]) == small[url]
        # Deeper pages cost no more than the second: no COUNT and no OFFSET.
        third = statements(_link(second[1], "next"))
        assert third[0] <= second[0] <= n


def test_notifications_are_paged_newest_first_by_keyset(app, session):
    """60 notifications: three pages of 25, 25 and 10, newest first, each shown once; a new
    one arriving between two clicks shifts nothing; Previous walks back; page 1 counts."""
    from portfolio.models import Notification

    world = make_world(session)
    learner = world.learner
    session.query(Notification).filter_by(recipient_id=learner.id).delete()
    for n in range(60):
        session.add(Notification(recipient_id=learner.id, kind="enrolled",
                                 title=f"Paged note {n:02d}", link="/"))
    session.commit()
    web = _signed_in(app, learner.email)

    def titles(page: str) -> list[str]:
        return re.findall(r"Paged note (\d\d)", page)

    url: str | None = "/notifications"
    seen: list[str] = []
    pages = []
    while url:
        page = web.client.get(url).get_data(as_text=True)
        pages.append(page)
        seen += titles(page)
        if len(pages) == 1:
            session.add(Notification(recipient_id=learner.id, kind="enrolled",
                                     title="Paged note 99", link="/"))
            session.commit()
        url = _link(page, "next")
    assert [len(titles(p)) for p in pages] == [25, 25, 10]
    assert seen == [f"{n:02d}" for n in range(59, -1, -1)]  # newest first, each once
    assert '<span class="count">60</span>' in pages[0]
    back = web.client.get(_link(pages[-1], "prev")).get_data(as_text=True)
    assert titles(back) == titles(pages[1])
    # The newest arrived meanwhile: the page before page 2 is still 59..35, and one more step
    # back reaches the first page, which now starts with it.
    before = web.client.get(_link(back, "prev")).get_data(as_text=True)
    assert titles(before) == titles(pages[0]) and _link(before, "prev")
    first = web.client.get(_link(before, "prev")).get_data(as_text=True)
    assert titles(first)[:2] == ["99", "59"] and _link(first, "prev") is None
    assert '<span class="count">61</span>' in first
    # Every row shown was marked read.
    session.expire_all()
    assert session.query(Notification).filter(Notification.recipient_id == learner.id,
                                              Notification.read_at.is_(None)).count() == 0
    assert web.client.get("/notifications?page=a%%%").status_code == 400


def test_a_learners_audit_history_is_paged_newest_first_and_nothing_is_cut_off(app, session):
    """It used to stop at the newest 500 events: an assessor or IQA with a long-running
    portfolio could not see its beginning. Now every event is on a page."""
    from portfolio.audit import record_event
    from portfolio.models import AuditEvent

    world = make_world(session)
    for n in range(130):
        record_event(session, action="evidence.update", subject_type="evidence",
                     subject_id=n, actor=world.learner, learner_id=world.learner.id)
    session.commit()
    expected = list(session.scalars(session.query(AuditEvent.seq).filter(
        AuditEvent.learner_id == world.learner.id).order_by(AuditEvent.seq.desc())
        .statement))
    web = _signed_in(app, world.assessor.email)
    url: str | None = f"/enrolments/{world.enrolment.id}/audit"
    seen: list[int] = []
    while url:
        page = web.client.get(url).get_data(as_text=True)
        seen += [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", _body(page))]
        url = _link(page, "next")
    assert seen == expected and len(expected) > 130


def test_an_eqa_packs_access_log_is_paged_and_nothing_is_cut_off(app, session):
    """It showed the newest 200 requests only; the admin can now read every one."""
    from portfolio.models import EqaAccessLog
    from tests.factories import make_eqa_pack

    world = make_world(session)
    pack = make_eqa_pack(session, world)
    for n in range(230):
        session.add(EqaAccessLog(pack_id=pack.id, user_id=world.eqa.id, method="GET",
                                 path=f"/eqa/packs/{pack.id}/page-{n:03d}", status=200))
    session.commit()
    admin = _signed_in(app, world.admin.email)
    url: str | None = f"/admin/eqa-packs/{pack.id}"
    seen: list[str] = []
    pages = []
    while url:
        page = admin.client.get(url).get_data(as_text=True)
        pages.append(page)
        seen += re.findall(r"page-(\d{3})</code>", page)
        url = _link(page, "next")
    assert seen == [f"{n:03d}" for n in range(229, -1, -1)]
    assert len(pages) == 2 and '<span class="count">230</span>' in pages[0]
