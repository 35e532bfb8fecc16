"""The to-do list on each dashboard follows the real state: entries appear when someone must act,
go when they have, count and show the oldest wait, and never show anyone else's work."""

from __future__ import annotations

import re

import pytest

from portfolio.assessment.services import review_evidence
from portfolio.models import ExportJob
from tests.conftest import Browserless
from tests.factories import PASSWORD, accept, decide, make_evidence, make_world
from tests.sampling_setup import sign_off_whole_unit


@pytest.fixture
def world(app, session):
    world = make_world(session)
    session.commit()
    return world


def _home(app, person) -> str:
    web = Browserless(app.test_client())
    web.login(person.email, PASSWORD)
    return web.client.get("/").get_data(True)


def _todo(html: str) -> str:
    start = html.index('id="todo-title"')
    return html[start:html.index("</section>", start)]


def test_nothing_waiting_reads_as_such(app, world):
    for person in (world.learner, world.assessor, world.iqa, world.admin):
        assert "Nothing is waiting for you" in _todo(_home(app, person))
    assert 'id="todo-title"' not in _home(app, world.eqa)  # the EQA reads packs, no queue


def test_learner_drafts_and_referred_items_with_the_feedback(app, session, world):
    make_evidence(session, world.enrolment, world.learner, title="First draft")
    make_evidence(session, world.enrolment, world.learner, title="Second draft")
    item = make_evidence(session, world.enrolment, world.learner, title="Complaint log",
                         maps=("1.1",), submit=True)
    review_evidence(session, item, actor=world.assessor, outcome="referred",
                    feedback_md="Add the **date** each complaint came in.", varcs={},
                    expected_version=1)
    session.commit()
    todo = _todo(_home(app, world.learner))
    assert "2 drafts to submit (Unit 40)" in todo
    assert f"/enrolments/{world.enrolment.id}/evidence?status=draft" in todo
    assert "1 item referred back to you" in todo
    assert f'href="/evidence/{item.id}">Complaint log</a>' in todo
    assert "Add the **date** each complaint came in." in todo
    assert re.search(r"oldest waiting (today|\d+ days?)", todo)
    # Nobody else is shown the learner's drafts.
    assert "drafts to submit" not in _todo(_home(app, world.other_learner))


def test_assessor_review_decide_and_countersign(app, session, world):
    submitted = make_evidence(session, world.enrolment, world.learner, maps=("1.1",),
                              submit=True)
    make_evidence(session, world.enrolment, world.learner, maps=("1.2",), submit=True)
    session.commit()
    todo = _todo(_home(app, world.assessor))
    assert "2 evidence items to review (1 learner)" in todo
    assert f"/enrolments/{world.enrolment.id}/review" in todo
    accept(session, submitted, world.assessor)
    session.commit()
    todo = _todo(_home(app, world.assessor))
    assert "1 evidence item to review" in todo
    assert "1 criterion with accepted evidence to decide (1 learner)" in todo
    decide(session, world.enrolment, world.assessor, "1.1", [submitted])
    session.commit()
    assert "to decide" not in _todo(_home(app, world.assessor))
    # A trainee's decision: the qualified assessor is asked to countersign; the trainee is not.
    other = make_evidence(session, world.other_enrolment, world.other_learner, maps=("1.3",),
                          submit=True)
    accept(session, other, world.trainee)
    decide(session, world.other_enrolment, world.trainee, "1.3", [other])
    session.commit()
    assert "1 decision to countersign" in _todo(_home(app, world.assessor))
    assert "to countersign" not in _todo(_home(app, world.trainee))


def test_learner_is_asked_to_cosign_and_then_sees_completed(app, session, world):
    """Defect: nothing asked the learner to co-sign after sign-off, and after co-signing the
    dashboard still offered "Add evidence" with no "Completed" state."""
    sign_off_whole_unit(session, world.enrolment, world.learner, world.assessor, cosign=False)
    html = _home(app, world.learner)
    todo = _todo(html)
    assert "Co-sign Unit 40: your assessor has signed it off" in todo
    assert f"/enrolments/{world.enrolment.id}/sign-off#co-title" in todo
    assert "todo-urgent" in todo
    from portfolio.assessment.services import cosign_unit
    from tests.factories import LIMITS, sign_as

    cosign_unit(session, world.enrolment, actor=world.learner,
                confirmation=sign_as(world.learner), **LIMITS)
    session.commit()
    html = _home(app, world.learner)
    assert "Co-sign" not in _todo(html)
    card = html[html.index('id="learner-title"'):]
    assert "Completed" in card and "Signed off by Asha Assessor" in card
    assert "Export the signed portfolio" in card
    assert "Add evidence" not in card


def test_learner_asked_to_declare_once_every_criterion_is_met(app, session, world):
    from tests.test_assessment import decide_all, observed, unit_numbers

    lo1 = tuple(n for n in unit_numbers(session, world.enrolment) if n.startswith("1."))
    account = make_evidence(session, world.enrolment, world.learner, "reflective_account",
                            maps=lo1, submit=True)
    accept(session, account, world.assessor)
    decide_all(session, world.enrolment, world.assessor, account,
               lo2=observed(session, world.enrolment, world.assessor))
    session.commit()
    todo = _todo(_home(app, world.learner))
    assert "Sign your declaration for Unit 40: every criterion is met" in todo
    assessor_todo = _todo(_home(app, world.assessor))
    assert "waiting for your sign-off" not in assessor_todo


def test_admin_sees_failed_exports_until_tried_again(app, session, world):
    job = ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id,
                    status="failed", message="The worker stopped.")
    session.add(job)
    session.commit()
    todo = _todo(_home(app, world.admin))
    assert "1 export failed" in todo and f"/export-jobs/{job.id}" in todo
    assert "export failed" not in _todo(_home(app, world.other_admin))
    session.add(ExportJob(enrolment_id=world.enrolment.id, requested_by_id=world.learner.id,
                          status="done"))
    session.commit()
    assert "export failed" not in _todo(_home(app, world.admin))
