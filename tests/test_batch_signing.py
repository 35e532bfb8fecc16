"""Deciding several criteria in one ceremony: one password and one typed name, but each criterion
its own decision and its own signature; all or nothing; a second click signs nothing more."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portfolio.assessment.signing import verify_signature
from portfolio.models import AuditEvent, CriterionDecision, Signature
from tests.conftest import Browserless
from tests.factories import PASSWORD, accept, make_evidence, make_world
from tests.test_assessment import unit_numbers


@pytest.fixture
def world(app, session):
    world = make_world(session)
    numbers = unit_numbers(session, world.enrolment)
    lo1 = tuple(n for n in numbers if n.startswith("1."))
    lo2 = tuple(n for n in numbers if n.startswith("2."))
    world.account = make_evidence(session, world.enrolment, world.learner, "reflective_account",
                                  title="How I resolve complaints", maps=lo1, submit=True)
    accept(session, world.account, world.assessor)
    world.observation = make_evidence(session, world.enrolment, world.assessor, "observation",
                                      title="Observed complaint handling", maps=lo2,
                                      submit=True)
    accept(session, world.observation, world.assessor)
    session.commit()
    return world


def _as(app, person) -> Browserless:
    web = Browserless(app.test_client())
    web.login(person.email, PASSWORD)
    return web


def _form(html: str) -> dict[str, list[str]]:
    """The batch form as the browser would send it, every criterion ticked."""
    ids = re.findall(r'name="criterion_ids" value="(\d+)"', html)
    states = dict(re.findall(r'name="state-(\d+)" value="([0-9a-f]+)"', html))
    return {"criterion_ids": ids, **{f"state-{i}": [states[i]] for i in ids}}


def _decisions(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(CriterionDecision))


def test_a_whole_unit_in_one_signature(app, session, world):
    web = _as(app, world.assessor)
    page = web.client.get(f"/enrolments/{world.enrolment.id}/decide").get_data(True)
    form = _form(page)
    assert len(form["criterion_ids"]) == 17
    assert page.count(" checked>") == 17 and "Observed complaint handling" in page
    sent = web.post(f"/enrolments/{world.enrolment.id}/decide",
                    {**form, "typed_name": world.assessor.full_name, "password": PASSWORD})
    assert sent.status_code == 302
    decisions = list(session.scalars(select(CriterionDecision)))
    assert len(decisions) == 17 and {d.status for d in decisions} == {"met"}
    signatures = [session.get(Signature, d.signature_id) for d in decisions]
    assert len({s.id for s in signatures}) == 17
    assert len({s.content_hash for s in signatures}) == 17  # each over its own content
    for d, sig in zip(decisions, signatures, strict=True):
        assert sig.content["criterion"]["id"] == d.criterion_id
        assert sig.statement.endswith(f"criterion {d.criterion.number} is met.")
        assert verify_signature(session, sig).state == "valid"
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "signature.criterion_decision")) == 17
    # A second click (the same form again) signs nothing more.
    again = web.post(f"/enrolments/{world.enrolment.id}/decide",
                     {**form, "typed_name": world.assessor.full_name, "password": PASSWORD})
    assert again.status_code == 409 and "already been decided" in again.get_data(True)
    assert _decisions(session) == 17
    assert "No criterion is ready to decide" in web.client.get(
        f"/enrolments/{world.enrolment.id}/decide").get_data(True)


def test_all_or_nothing_when_one_criterion_changed(app, session, world):
    web = _as(app, world.assessor)
    form = _form(web.client.get(f"/enrolments/{world.enrolment.id}/decide").get_data(True))
    first = form["criterion_ids"][0]
    form[f"state-{first}"] = ["0" * 16]  # the evidence changed since the page was drawn
    sent = web.post(f"/enrolments/{world.enrolment.id}/decide",
                    {**form, "typed_name": world.assessor.full_name, "password": PASSWORD})
    assert sent.status_code == 409
    assert "1.1: The evidence changed" in sent.get_data(True)
    assert "Nothing was signed" in sent.get_data(True)
    assert _decisions(session) == 0


def test_wrong_password_or_nothing_ticked_signs_nothing(app, session, world):
    web = _as(app, world.assessor)
    form = _form(web.client.get(f"/enrolments/{world.enrolment.id}/decide").get_data(True))
    wrong = web.post(f"/enrolments/{world.enrolment.id}/decide",
                     {**form, "typed_name": world.assessor.full_name, "password": "nope"})
    assert wrong.status_code == 422 and "not your password" in wrong.get_data(True)
    empty = web.post(f"/enrolments/{world.enrolment.id}/decide",
                     {"typed_name": world.assessor.full_name, "password": PASSWORD})
    assert empty.status_code == 422 and "Tick at least one criterion" in empty.get_data(True)
    assert _decisions(session) == 0
    # Ids that are not numbers, or not of this unit, are ignored, never a server error.
    odd = web.post(f"/enrolments/{world.enrolment.id}/decide",
                   {"criterion_ids": ["²", "99999999999999999999", "abc"],
                    "typed_name": world.assessor.full_name, "password": PASSWORD})
    assert odd.status_code == 422
    assert _decisions(session) == 0


def test_a_trainee_batch_waits_for_countersignature(app, session, world):
    other = make_evidence(session, world.other_enrolment, world.other_learner,
                          "reflective_account", maps=("1.1", "1.2"), submit=True)
    accept(session, other, world.trainee)
    session.commit()
    web = _as(app, world.trainee)
    form = _form(web.client.get(f"/enrolments/{world.other_enrolment.id}/decide")
                 .get_data(True))
    assert len(form["criterion_ids"]) == 2
    sent = web.post(f"/enrolments/{world.other_enrolment.id}/decide",
                    {**form, "typed_name": world.trainee.full_name, "password": PASSWORD})
    assert sent.status_code == 302
    session.expire_all()
    statuses = set(session.scalars(select(CriterionDecision.status)))
    assert statuses == {"awaiting_countersignature"}


@pytest.mark.parametrize("role", ["learner", "iqa", "trainee", "admin", "other_learner"])
def test_only_the_learners_assessor_decides(app, session, world, role):
    web = _as(app, getattr(world, role))
    got = web.client.get(f"/enrolments/{world.enrolment.id}/decide")
    assert got.status_code in (403, 404)
    sent = web.post(f"/enrolments/{world.enrolment.id}/decide",
                    {"criterion_ids": ["1"], "typed_name": "x", "password": PASSWORD})
    assert sent.status_code in (403, 404)
    assert _decisions(session) == 0


def test_bulk_accept_and_refer_with_one_comment(app, session, world):
    from portfolio.models import EvidenceReview

    items = [make_evidence(session, world.enrolment, world.learner, title=f"Log {n}",
                           maps=("1.1",), submit=True) for n in range(3)]
    session.commit()
    web = _as(app, world.assessor)
    queue = web.client.get(f"/enrolments/{world.enrolment.id}/review").get_data(True)
    for item in items:
        assert f'name="evidence_ids" value="{item.id}"' in queue
    base = {f"version-{i.id}": "1" for i in items}
    # Referring back needs the comment; nothing is recorded without it.
    bare = web.post(f"/enrolments/{world.enrolment.id}/review",
                    {**base, "evidence_ids": [str(items[0].id)], "outcome": "referred"})
    assert bare.status_code == 422 and "Say what the learner needs to change" in bare.get_data(True)
    # A stale version refuses the whole lot, naming the item.
    stale = web.post(f"/enrolments/{world.enrolment.id}/review",
                     {**base, f"version-{items[1].id}": "7", "outcome": "accepted",
                      "evidence_ids": [str(i.id) for i in items]})
    assert stale.status_code == 409 and "“Log 1”" in stale.get_data(True)
    mine = [i.id for i in items]
    session.expire_all()
    assert session.query(EvidenceReview).filter(EvidenceReview.evidence_id.in_(mine)).count() == 0
    done = web.post(f"/enrolments/{world.enrolment.id}/review",
                    {**base, "outcome": "referred", "feedback_md": "Add the dates.",
                     "evidence_ids": [str(i.id) for i in items[:2]]})
    assert done.status_code == 302
    session.expire_all()
    reviews = session.query(EvidenceReview).filter(EvidenceReview.evidence_id.in_(mine)).all()
    assert len(reviews) == 2 and {r.feedback_md for r in reviews} == {"Add the dates."}
    assert {session.get(type(items[0]), i.id).status for i in items} == {"referred", "submitted"}
    assert session.query(AuditEvent).filter_by(action="evidence.referred").count() == 2
    # Another learner's evidence id in the form is ignored, never reviewed.
    theirs = make_evidence(session, world.other_enrolment, world.other_learner, maps=("1.1",),
                           submit=True)
    session.commit()
    web.post(f"/enrolments/{world.enrolment.id}/review",
             {"evidence_ids": [str(theirs.id)], f"version-{theirs.id}": "1",
              "outcome": "accepted"})
    session.expire_all()
    assert session.get(type(theirs), theirs.id).status == "submitted"


def test_learner_submits_several_drafts_under_one_signing(app, session, world):
    from portfolio.models import Evidence

    drafts = [make_evidence(session, world.enrolment, world.learner, title=f"Draft {n}",
                            maps=("1.1",)) for n in range(3)]
    unmapped = make_evidence(session, world.enrolment, world.learner, title="Loose draft")
    session.commit()
    web = _as(app, world.learner)
    listing = web.client.get(f"/enrolments/{world.enrolment.id}/evidence").get_data(True)
    for d in drafts:
        assert f'name="evidence_ids" value="{d.id}"' in listing
    url = f"/enrolments/{world.enrolment.id}/evidence/submit"
    ids = [str(d.id) for d in drafts]
    wrong = web.post(url, {"evidence_ids": ids, "typed_name": world.learner.full_name,
                           "password": "nope"})
    assert wrong.status_code == 422
    refused = web.post(url, {"evidence_ids": [*ids, str(unmapped.id)],
                             "typed_name": world.learner.full_name, "password": PASSWORD})
    assert refused.status_code == 409 and "“Loose draft”" in refused.get_data(True)
    session.expire_all()
    assert {session.get(Evidence, d.id).status for d in drafts} == {"draft"}
    done = web.post(url, {"evidence_ids": ids, "typed_name": world.learner.full_name,
                          "password": PASSWORD})
    assert done.status_code == 302
    session.expire_all()
    assert {session.get(Evidence, d.id).status for d in drafts} == {"submitted"}
    sigs = list(session.scalars(select(Signature).where(
        Signature.purpose == "evidence_declaration",
        Signature.subject_id.in_([d.id for d in drafts + [unmapped]]))))
    assert sorted(s.subject_id for s in sigs) == sorted(d.id for d in drafts)
    for sig in sigs:
        assert verify_signature(session, sig).state == "valid"
    # The assessor cannot submit on the learner's behalf this way.
    assert _as(app, world.assessor).post(url, {"evidence_ids": [str(unmapped.id)]}
                                         ).status_code == 403


def test_only_the_learner_is_offered_their_drafts_to_tick(app, session, world):
    """The evidence list offers a tick box on the learner's own drafts (and referred items),
    never on submitted ones, and to nobody else: the batch submission allows only them."""
    draft = make_evidence(session, world.enrolment, world.learner, maps=("1.1",))
    session.commit()
    for person, offered in ((world.learner, {draft.id}), (world.assessor, set())):
        page = _as(app, person).client.get(
            f"/enrolments/{world.enrolment.id}/evidence").get_data(True)
        ticks = {int(n) for n in re.findall(r'id="pick-(\d+)"', page)}
        assert ticks == offered, person.email
