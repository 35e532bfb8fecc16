"""The readiness report lists what still stands between a learner and a claim."""

from __future__ import annotations

from datetime import date

from portfolio.assessment.readiness import readiness
from tests.factories import PASSWORD, accept, ask_witness, make_evidence, make_world


def test_open_items_are_listed_with_reasons(app, session):
    world = make_world(session)
    make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    ask_witness(session, world.enrolment, world.learner)
    session.commit()
    report = readiness(session, world.enrolment, date.today())
    assert not report.ready
    numbers = [n for n, _text, _reasons in report.open_criteria]
    assert len(numbers) == 17 and "1.1" in numbers
    reasons = dict((n, r) for n, _t, r in report.open_criteria)
    assert any("assessor has still to review" in r for r in reasons["1.1"])
    assert any("unit declaration" in d for d in report.declarations)
    assert report.witnesses and "still awaited" in report.witnesses[0]
    assert report.sign_off == "Not signed off yet."


def test_invalidated_signatures_show_up(app, session):
    from portfolio.assessment.services import review_evidence
    from portfolio.evidence.services import EvidenceInput, revise_evidence

    world = make_world(session)
    item = make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    accept(session, item, world.assessor)
    review_evidence(session, item, actor=world.assessor, outcome="referred",
                    feedback_md="Add an example.", varcs={}, expected_version=1)
    revise_evidence(session, item, actor=world.learner, data=EvidenceInput(
        title="Better", activity_on=date.today(), body_md="With an example now.",
        personal_data_confirmed=True), keep_file_ids=[], files=[], expected_version=1,
        today=date.today())
    session.commit()
    report = readiness(session, world.enrolment, date.today())
    assert any("invalidated by a later change" in s for s in report.signatures)


def test_page(app, session, web):
    world = make_world(session)
    web.login(world.iqa.email, PASSWORD)
    page = web.client.get(f"/enrolments/{world.enrolment.id}/readiness")
    assert page.status_code == 200 and "Criteria not yet met" in page.get_data(True)
