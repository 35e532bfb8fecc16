"""Every main page of every role, and the API, sends the same number of SQL statements whatever
the caseload, the IQA's enrolments, the centre's size or the learner's evidence (issue 16).

Each page is counted in a small centre and again in a larger one; a page that runs one query
per row shows up as a count that grows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from portfolio.auth.services import create_api_token
from portfolio.db import get_database
from tests.conftest import Browserless
from tests.factories import (
    PASSWORD,
    accept,
    make_enrolment,
    make_evidence,
    make_user,
    make_world,
)

ROLES = ("learner", "assessor", "iqa", "admin")


def _grow(session: Any, world: Any, learners: int, items: int) -> None:
    """Add learners to the assessor's caseload (and the IQA's), and evidence to everyone."""
    centre = world.assessor.centre
    for _ in range(learners):
        learner = make_user(session, centre, "learner")
        enrolment = make_enrolment(session, learner, world.assessor, world.iqa, world.unit)
        for n in range(items):
            evidence = make_evidence(session, enrolment, learner, maps=("1.1", "1.2"),
                                     submit=True, title=f"Item {n}")
            if n % 2 == 0:
                accept(session, evidence, world.assessor)
    for n in range(items):
        evidence = make_evidence(session, world.enrolment, world.learner, maps=("1.3", "2.1"),
                                 submit=True, title=f"More {n}")
        if n % 2 == 0:
            accept(session, evidence, world.assessor)
    session.commit()


def _pages(world: Any) -> dict[str, list[str]]:
    e, item = world.enrolment.id, world.evidence.id
    return {
        "learner": ["/", f"/enrolments/{e}/coverage", f"/enrolments/{e}/evidence",
                    f"/evidence/{item}", f"/enrolments/{e}/readiness", "/notifications"],
        "assessor": ["/", "/caseload", f"/enrolments/{e}/review", f"/enrolments/{e}/coverage",
                     "/countersign"],
        "iqa": ["/", "/iqa"],
        "admin": ["/", "/admin/people", "/admin/enrolments"],
        "api": ["/api/v1/enrolments", f"/api/v1/enrolments/{e}/coverage",
                f"/api/v1/enrolments/{e}/evidence", f"/api/v1/evidence/{item}"],
    }


def _counter(app: Any) -> tuple[list[str], Callable[[], None]]:
    engine = get_database(app).engine
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def _count_all(app: Any, clients: dict[str, Any], token: str,
               pages: dict[str, list[str]]) -> dict[str, int]:
    seen, stop = _counter(app)
    counts = {}
    try:
        for who, urls in pages.items():
            for url in urls:
                seen.clear()
                if who == "api":
                    response = clients["assessor"].client.get(
                        url, headers={"Authorization": f"Bearer {token}"})
                else:
                    response = clients[who].client.get(url)
                assert response.status_code == 200, (who, url, response.status_code)
                counts[f"{who} {url}"] = len(seen)
    finally:
        stop()
    return counts


@pytest.fixture
def centre(app, session):
    world = make_world(session, app.config["STORAGE_DIR"])
    _grow(session, world, learners=1, items=2)
    clients = {}
    for role in ROLES:
        person = getattr(world, role)
        clients[role] = Browserless(app.test_client())
        assert clients[role].login(person.email, PASSWORD).status_code == 302
    _, token = create_api_token(session, world.assessor, "count")
    session.commit()
    return world, clients, token


def test_page_statements_do_not_grow_with_the_centre(app, session, centre):
    world, clients, token = centre
    pages = _pages(world)
    _count_all(app, clients, token, pages)  # first visits: anything cached per process is filled
    small = _count_all(app, clients, token, pages)
    _grow(session, world, learners=4, items=4)
    large = _count_all(app, clients, token, pages)
    table = "\n".join(f"{small[k]:5} {large[k]:5}  {k}" for k in small)
    print("statements: small centre, larger centre\n" + table)
    grown = {k: (small[k], large[k]) for k in small if large[k] != small[k]}
    assert not grown, f"statements grow with the centre: {grown}\n{table}"
