"""The readiness report lists what still stands between a learner and a claim, and for each
line who can clear it and how (issue 13, defect 10). Nothing nobody can act on is listed."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from portfolio.assessment.readiness import readiness
from portfolio.models import Signature, WitnessRequest
from tests.factories import PASSWORD, accept, ask_witness, decide, make_evidence, make_world


def _report(app, session, enrolment):
    with app.test_request_context():
        return readiness(session, enrolment, date.today())


def test_open_items_say_who_acts_and_how(app, session):
    world = make_world(session)
    make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    ask_witness(session, world.enrolment, world.learner)
    session.commit()
    report = _report(app, session, world.enrolment)
    assert not report.ready
    lines = {n: line for n, _text, line in report.open_criteria}
    assert len(lines) == 17
    # Submitted, not reviewed: the assessor reviews it, from the review queue.
    review = lines["1.1"]
    assert "assessor has still to review" in review.text
    assert review.how == "Review the evidence" and review.actors == {world.assessor.id}
    assert review.url.endswith(f"/enrolments/{world.enrolment.id}/review")
    assert review.link_for(world.learner.id) == ""
    # Nothing mapped: the learner adds evidence, on the criterion's page.
    empty = lines["1.2"]
    assert empty.actors == {world.learner.id} and empty.how == "Add evidence for it"
    assert f"/enrolments/{world.enrolment.id}/criteria/" in empty.url
    declaration = report.declarations[0]
    assert "unit declaration" in declaration.text and declaration.actors == {world.learner.id}
    witness = report.witnesses[0]
    assert "still awaited" in witness.text and "Send the link again" in witness.how
    assert witness.actors == {world.learner.id, world.assessor.id}
    assert report.sign_off is not None and report.sign_off.url == ""


def test_a_revision_that_ended_signatures_is_history_not_a_task(app, session):
    """Defect 10: a signature invalidated by normal history (the learner revised referred
    evidence) was listed, though nobody can do anything about it."""
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
    ended = session.scalars(select(Signature).where(
        Signature.enrolment_id == world.enrolment.id,
        Signature.invalidated_at.is_not(None))).all()
    assert ended  # the old declaration ended: history
    report = _report(app, session, world.enrolment)
    assert report.signatures == []


def test_a_broken_signature_goes_to_the_centre_admin(app, session):
    world = make_world(session)
    item = make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    accept(session, item, world.assessor)
    decision = decide(session, world.enrolment, world.assessor, "1.1", [item])
    session.commit()
    signature = session.get(Signature, decision.signature_id)
    signature.typed_name = "Someone Else"  # an edited row
    signature.content = {**signature.content, "forged": True}
    session.commit()
    report = _report(app, session, world.enrolment)
    broken = [line for line in report.signatures if "changed outside the app" in line.text]
    assert broken and broken[0].who == "the centre's administrator"
    assert world.admin.id in broken[0].actors and world.assessor.id not in broken[0].actors


def test_a_declined_witness_drops_out_once_someone_else_is_asked(app, session):
    world = make_world(session)
    first, _token = ask_witness(session, world.enrolment, world.learner)
    first.status, first.decline_reason = "declined", "I was not there."
    session.commit()
    lines = _report(app, session, world.enrolment).witnesses
    assert [line.text for line in lines] == [f"{first.witness_name} declined: “I was not there.”."]
    ask_witness(session, world.enrolment, world.learner, name="Pat Second")
    session.commit()
    lines = _report(app, session, world.enrolment).witnesses
    assert len(lines) == 1 and "Pat Second" in lines[0].text
    assert session.scalar(select(WitnessRequest).where(WitnessRequest.id == first.id))


def test_ready_to_sign_off_names_the_assessor(app, session):
    from tests.sampling_setup import sign_off_whole_unit

    world = make_world(session)
    sign_off_whole_unit(session, world.enrolment, world.learner, world.assessor, cosign=False)
    session.commit()
    report = _report(app, session, world.enrolment)
    assert report.open_criteria == [] and report.declarations == []
    assert report.sign_off.how == "Co-sign the unit"
    assert report.sign_off.actors == {world.learner.id}


def test_page(app, session, web):
    world = make_world(session)
    make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    session.commit()
    web.login(world.assessor.email, PASSWORD)
    page = web.client.get(f"/enrolments/{world.enrolment.id}/readiness").get_data(True)
    assert "Criteria not yet met" in page and "Who:" in page
    # The assessor gets a link for their own step, and plain words for the learner's.
    assert f'href="/enrolments/{world.enrolment.id}/review">Review the evidence</a>' in page
    assert "How:</span> Add evidence for it" in page
