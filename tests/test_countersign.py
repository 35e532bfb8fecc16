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


def _return(web, decision_id, comment, person):
    return web.post(f"/decisions/{decision_id}/return", {"comment_md": comment, **_sign(person)})


def test_a_trainee_decision_is_returned_corrected_and_countersigned(app, session, world):
    """Defect: the only button was "Countersign"; a doubtful decision could not be declined."""
    from portfolio.assessment.signing import verify_signature
    from portfolio.models import AuditEvent, Notification, Signature

    countersigner = _as(app, world.assessor)
    review = countersigner.client.get(f"/decisions/{world.decision.id}/review").get_data(True)
    assert f'action="/decisions/{world.decision.id}/return"' in review
    # No comment: refused on the field, nothing changes.
    empty = _return(countersigner, world.decision.id, "  ", world.assessor)
    assert empty.status_code == 422
    assert "comment is what they will work from" in empty.get_data(True)
    # Wrong password: refused, nothing changes.
    wrong = countersigner.post(f"/decisions/{world.decision.id}/return",
                               {"comment_md": "Check the dates.",
                                "typed_name": world.assessor.full_name, "password": "nope"})
    assert wrong.status_code == 422
    session.expire_all()
    assert session.get(CriterionDecision, world.decision.id).status == "awaiting_countersignature"
    assert not session.query(Signature).filter_by(purpose="decision_return").count()

    done = _return(countersigner, world.decision.id, "The rota is **undated**: which week?",
                   world.assessor)
    assert done.status_code == 302
    session.expire_all()
    decision = session.get(CriterionDecision, world.decision.id)
    assert decision.status == "returned"
    signature = session.query(Signature).filter_by(purpose="decision_return").one()
    assert signature.subject_id == decision.id and signature.signer_id == world.assessor.id
    assert signature.content["comment_md"] == "The rota is **undated**: which week?"
    assert verify_signature(session, signature).state == "valid"
    assert session.query(AuditEvent).filter_by(action="signature.decision_return").count() == 1
    told = session.query(Notification).filter_by(kind="decision_returned").one()
    assert told.recipient_id == world.trainee.id
    # A second click: the decision is no longer there to return, and nothing more is signed.
    again = _return(countersigner, world.decision.id, "again", world.assessor)
    assert again.status_code == 404
    assert session.query(Signature).filter_by(purpose="decision_return").count() == 1

    # The trainee sees it, with the comment, on their queue and on the criterion page.
    trainee = _as(app, world.trainee)
    queue = trainee.client.get("/countersign").get_data(True)
    assert "Returned to you" in queue and "<strong>undated</strong>" in queue
    assert "1 decision returned to you with comments" in trainee.client.get("/").get_data(True)
    signoff = trainee.client.get(f"/enrolments/{world.other_enrolment.id}/sign-off")
    assert signoff.status_code == 200 and "Returned to the trainee" in signoff.get_data(True)
    page = trainee.client.get(f"/enrolments/{world.other_enrolment.id}/criteria/"
                              f"{decision.criterion_id}").get_data(True)
    assert "Returned with comments" in page and "Sign: 2.8 is met" in page

    # The trainee decides again; it waits for a countersignature again, and is countersigned.
    redo = decide(session, world.other_enrolment, world.trainee, "2.8", [world.cited])
    session.commit()
    assert redo.status == "awaiting_countersignature"
    assert "Returned to you" not in trainee.client.get("/countersign").get_data(True)
    assert countersigner.client.get(f"/decisions/{redo.id}/review").status_code == 200
    signed = countersigner.post(f"/decisions/{redo.id}/countersign", _sign(world.assessor))
    assert signed.status_code == 302
    session.expire_all()
    assert session.get(CriterionDecision, redo.id).status == "met"
    assert session.get(CriterionDecision, world.decision.id).status == "returned"


def test_return_and_countersign_cannot_both_win(app, session, world):
    from portfolio.assessment import services
    from portfolio.errors import InvalidTransition, PermissionDenied
    from tests.factories import LIMITS, sign_as

    services.countersign_decision(session, world.decision, actor=world.assessor,
                                  confirmation=sign_as(world.assessor), **LIMITS)
    session.commit()
    with pytest.raises(InvalidTransition):
        services.return_decision(session, world.decision, actor=world.assessor,
                                 comment_md="Too late", confirmation=sign_as(world.assessor),
                                 **LIMITS)
    session.rollback()
    # Nobody but a qualified countersigner may return one (the trainee who decided, here).
    with pytest.raises(PermissionDenied):
        services.return_decision(session, world.decision, actor=world.trainee,
                                 comment_md="mine", confirmation=sign_as(world.trainee),
                                 **LIMITS)


def test_several_decisions_countersigned_in_one_ceremony(app, session, world):
    from portfolio.assessment.signing import verify_signature
    from portfolio.models import Signature

    second = make_evidence(session, world.other_enrolment, world.other_learner,
                           "reflective_account", maps=("1.1",), submit=True)
    accept(session, second, world.trainee)
    other = decide(session, world.other_enrolment, world.trainee, "1.1", [second])
    session.commit()
    web = _as(app, world.assessor)
    queue = web.client.get("/countersign").get_data(True)
    ids = [world.decision.id, other.id]
    for i in ids:
        assert f'name="decision_ids" value="{i}"' in queue
    # Nothing ticked, or a wrong password: nothing countersigned.
    assert web.post("/countersign", _sign(world.assessor)).status_code == 422
    wrong = web.post("/countersign", {"decision_ids": [str(i) for i in ids],
                                      "typed_name": world.assessor.full_name,
                                      "password": "nope"})
    assert wrong.status_code == 422
    session.expire_all()
    assert not session.query(Signature).filter_by(purpose="countersignature").count()
    # One already returned: the whole batch is refused, naming it.
    from portfolio.assessment import services
    from tests.factories import LIMITS, sign_as

    services.return_decision(session, other, actor=world.assessor, comment_md="Dates?",
                             confirmation=sign_as(world.assessor), **LIMITS)
    session.commit()
    stale = web.post("/countersign", {"decision_ids": [str(i) for i in ids],
                                      **_sign(world.assessor)})
    assert stale.status_code == 409 and "1.1 for Olu Other" in stale.get_data(True)
    session.expire_all()
    assert session.get(CriterionDecision, world.decision.id).status == "awaiting_countersignature"
    assert not session.query(Signature).filter_by(purpose="countersignature").count()
    # The one still waiting, ticked alone, is countersigned with its own signature.
    done = web.post("/countersign", {"decision_ids": [str(world.decision.id)],
                                     **_sign(world.assessor)})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(CriterionDecision, world.decision.id).status == "met"
    sig = session.query(Signature).filter_by(purpose="countersignature").one()
    assert sig.subject_id == world.decision.id
    assert verify_signature(session, sig).state == "valid"
    # A trainee cannot countersign (refused, nothing signed).
    assert _as(app, world.trainee).post("/countersign", {
        "decision_ids": [str(world.decision.id)], **_sign(world.trainee)}).status_code in (403,
                                                                                       409)
