"""The caseload costs the same number of queries for 2 learners or 12, and sorts and filters."""

from __future__ import annotations

from sqlalchemy import event

from portfolio.assessment.queries import list_caseload
from tests.factories import PASSWORD, make_centre, make_enrolment, make_evidence, make_user


def _queries(session, assessor) -> int:
    engine = session.get_bind()
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        session.expire_all()
        rows = list_caseload(session, assessor)
        for row in rows:  # what the page reads
            _ = (row.enrolment.learner.full_name, row.enrolment.unit.number, row.waiting)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def _add_learners(session, centre, assessor, n: int) -> None:
    for _ in range(n):
        learner = make_user(session, centre, "learner")
        enrolment = make_enrolment(session, learner, assessor)
        make_evidence(session, enrolment, learner, maps=("1.1",), submit=True)
    session.commit()


def test_fixed_number_of_queries_whatever_the_caseload(app, session):
    centre = make_centre(session)
    assessor = make_user(session, centre, "assessor")
    _add_learners(session, centre, assessor, 2)
    small = _queries(session, assessor)
    _add_learners(session, centre, assessor, 10)
    assert _queries(session, assessor) == small
    assert len(list_caseload(session, assessor)) == 12


def test_caseload_page_filters_and_sorts(app, session, web):
    centre = make_centre(session)
    assessor = make_user(session, centre, "assessor")
    for name, employer in (("Ann Alpha", "North Ltd"), ("Bob Beta", "South Ltd")):
        learner = make_user(session, centre, "learner", name=name)
        make_enrolment(session, learner, assessor, employer=employer)
    session.commit()
    web.login(assessor.email, PASSWORD)
    both = web.client.get("/caseload?sort=learner").get_data(True)
    assert both.index("Ann Alpha") < both.index("Bob Beta")
    north = web.client.get("/caseload?employer=North+Ltd").get_data(True)
    assert "Ann Alpha" in north and "Bob Beta" not in north
    named = web.client.get("/caseload?q=bob").get_data(True)
    assert "Bob Beta" in named and "Ann Alpha" not in named
