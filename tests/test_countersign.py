"""Countersigning a trainee's decision: the countersigner reads what they sign, and nothing more."""

from __future__ import annotations

import pytest

from portfolio.models import CriterionDecision
from tests.conftest import Browserless
from tests.factories import (
    PASSWORD,
    TINY_PDF,
    accept,
    decide,
    make_evidence,
    make_user,
    make_world,
    stage_bytes,
)


@pytest.fixture
def world(app, session):
    world = make_world(session)
    pdf = stage_bytes(app.config["STORAGE_DIR"], TINY_PDF, "rota.pdf")
    world.cited = make_evidence(session, world.other_enrolment, world.other_learner,
                                "work_product", title="Weekly rota", body="Rota I drew up.",
                                files=[pdf], maps=("2.8",), submit=True)
    accept(session, world.cited, world.trainee)
    world.decision = decide(session, world.other_enrolment, world.trainee, "2.8",
                            [world.cited])
    world.private = make_evidence(session, world.other_enrolment, world.other_learner,
                                  title="Private draft", body="Not for the countersigner.")
    session.commit()
    return world


def _as(app, person) -> Browserless:
    web = Browserless(app.test_client())
    web.login(person.email, PASSWORD)
    return web


def _sign(person) -> dict:
    return {"typed_name": person.full_name, "password": PASSWORD}


def test_check_the_evidence_opens_for_the_countersigner(app, session, world):
    """Defect: the queue's link went to the learner's criterion page, a 404 for anyone but the
    learner's own assessor, while the countersigner signs that they reviewed the evidence."""
    web = _as(app, world.assessor)
    queue = web.client.get("/countersign").get_data(True)
    link = f"/decisions/{world.decision.id}/review"
    assert f'href="{link}"' in queue
    page = web.client.get(link)
    html = page.get_data(True)
    assert page.status_code == 200
    assert "Weekly rota" in html and "Rota I drew up." in html and "rota.pdf" in html
    assert "Private draft" not in html
    file_id = world.cited.versions[0].files[0].id
    got = web.client.get(f"/decisions/{world.decision.id}/files/{file_id}?download=1")
    assert got.status_code == 200 and got.data == TINY_PDF
    # The rest of the learner's portfolio stays closed.
    assert web.client.get(f"/evidence/{world.private.id}").status_code == 404
    assert web.client.get(f"/evidence/{world.cited.id}").status_code == 404


def test_reading_ends_once_countersigned(app, session, world):
    web = _as(app, world.assessor)
    link = f"/decisions/{world.decision.id}/review"
    done = web.post(f"/decisions/{world.decision.id}/countersign", _sign(world.assessor))
    assert done.status_code == 302
    session.expire_all()
    assert session.get(CriterionDecision, world.decision.id).status == "met"
    assert web.client.get(link).status_code == 404


def test_people_who_may_not_countersign_cannot_read(app, session, world):
    # The trainee who decided, and a second trainee (who may not countersign): neither reads
    # the decision through this door.
    other_trainee = make_user(session, world.enrolment.learner.centre, "assessor",
                              email="t2@example.org", name="Tia Trainee",
                              assessor_status="trainee")
    session.commit()
    link = f"/decisions/{world.decision.id}/review"
    for person in (world.trainee, other_trainee):
        assert _as(app, person).client.get(link).status_code == 404
    queue = _as(app, other_trainee).client.get("/countersign").get_data(True)
    assert link not in queue  # no link offered to someone who cannot use it
