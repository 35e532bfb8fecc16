"""Witness testimony by single-use link: the round trip over real SMTP, bad links, warnings."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portfolio.cli import cli
from portfolio.db import utcnow
from portfolio.evidence.coverage import compute_coverage
from portfolio.models import AuditEvent, Evidence, WitnessRequest
from portfolio.witness import services
from tests.conftest import Browserless, csrf_from
from tests.factories import (
    PASSWORD,
    ask_witness,
    criterion,
    make_evidence,
    make_user,
    make_world,
)
from tests.test_notify import _parse, _smtp_config, smtp_server  # noqa: F401 - fixture

LINK = re.compile(r"http://localhost/w/([A-Za-z0-9_\-]+)")


@pytest.fixture
def mail_app(make_app, smtp_server):  # noqa: F811 - the fixture above
    controller, handler = smtp_server
    return make_app(**_smtp_config(controller)), handler


def _request_form(session, **extra) -> dict:
    data = {"witness_name": "Rachel Osei", "witness_email": "rachel.osei@work.example",
            "witness_role": "Team leader", "organisation": "Acme Utilities",
            "relationship": "Line manager",
            "activity": "Handled a complaint about a double payment, start to finish.",
            "activity_on": "2026-11-02", "activity_place": "Contact centre",
            "criterion_ids": [str(criterion(session, "2.2").id),
                              str(criterion(session, "2.9").id)],
            "draft_md": ""}
    data.update(extra)
    return data


def _witness_post(client, token: str, **fields):
    page = client.get(f"/w/{token}")
    data = {"testimony_md": "I sat next to Lee and heard them take the complaint, find the "
                            "cause and agree a refund within their authority.",
            "relationship": "Line manager", "related": "no", "no_customer_data": "y",
            "typed_name": "Rachel Osei", "csrf_token": csrf_from(page.get_data(True))}
    data.update(fields)
    return client.post(f"/w/{token}", data=data)


def test_round_trip_over_real_smtp(mail_app, session):
    app, handler = mail_app
    s = app.extensions["portfolio.db"].sessionmaker()
    world = make_world(s)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    sent = web.post(f"/enrolments/{world.enrolment.id}/witnesses", _request_form(s))
    assert sent.status_code == 302, sent.get_data(True)[-2000:]
    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.rcpt_tos == ["rachel.osei@work.example"]
    token = LINK.search(_parse(envelope.content).get_content()).group(1)
    assert len(token) >= 43  # 256 random bits, URL-safe
    stored = s.scalar(select(WitnessRequest))
    assert token not in stored.token_hash and stored.token_hash == services.token_hash(token)

    witness = app.test_client()  # no account, no session
    page = witness.get(f"/w/{token}")
    html = page.get_data(True)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert world.learner.full_name in html and "Take personal responsibility" in html
    # Nothing else of the portfolio, and no way into the rest of the app.
    assert "Reply letter" not in html and world.assessor.full_name not in html
    assert not [h for h in re.findall(r'href="([^"]+)"', html) if not h.startswith("/static/")]

    signed = _witness_post(witness, token)
    assert signed.status_code == 200 and "Thank you, Rachel Osei" in signed.get_data(True)
    s.expire_all()
    request = s.scalar(select(WitnessRequest))
    assert request.status == "signed" and request.signed_name == "Rachel Osei"
    assert len(request.content_hash) == 64
    evidence = s.get(Evidence, request.evidence_id)
    assert evidence.kind == "witness_testimony" and evidence.status == "submitted"
    live = sorted(m.criterion.number for m in evidence.mappings if m.removed_at is None)
    assert live == ["2.2", "2.9"]
    coverage = {c.number: c for c in compute_coverage(s, world.enrolment, utcnow().date())
                .criteria}
    assert coverage["2.9"].status == "evidenced"
    assert s.scalar(select(func.count()).select_from(AuditEvent)
                    .where(AuditEvent.action == "witness.sign")) == 1
    # The link is single-use.
    again = witness.get(f"/w/{token}")
    assert again.status_code == 410 and "already been signed" in again.get_data(True)
    status_list = web.client.get(f"/enrolments/{world.enrolment.id}/witnesses").get_data(True)
    assert "Witness status list" in status_list and "Team leader" in status_list
    s.close()


@pytest.mark.parametrize(("spoil", "message"), [
    ("cancel", "withdrawn"),
    ("replace", "withdrawn"),
    ("resend", "not valid"),
    ("expire", "expired"),
    ("decline", "declined"),
    ("forge", "not valid"),
])
def test_bad_links_show_a_clear_page_and_change_nothing(app, session, spoil, message):
    world = make_world(session)
    request, token = ask_witness(session, world.enrolment, world.learner)
    session.commit()
    if spoil == "cancel":
        services.cancel(session, request, actor=world.learner)
    elif spoil == "replace":
        services.replace(session, request, actor=world.learner, data=services.RequestInput(
            witness_name="Rachel Osei", witness_email="r.osei@work.example",
            witness_role="Team leader", organisation="Acme", relationship="Line manager",
            activity="Handled a complaint.", activity_on=utcnow().date(),
            activity_place="Leeds", criterion_ids=[criterion(session, "2.9").id]),
            today=utcnow().date(), link_days=14)
    elif spoil == "resend":
        services.resend(session, request, actor=world.learner, link_days=14)
    elif spoil == "expire":
        request.expires_at = utcnow() - timedelta(minutes=1)
    elif spoil == "decline":
        services.decline(session, token, "Not me")
    elif spoil == "forge":
        token = token[:-4] + "AAAA"
    session.commit()
    before = session.scalar(select(func.count()).select_from(Evidence))
    client = app.test_client()
    page = client.get(f"/w/{token}")
    assert page.status_code == 410 and message in page.get_data(True)
    assert page.headers["Cache-Control"] == "no-store"
    posted = client.post(f"/w/{token}", data={"testimony_md": "x" * 50, "typed_name": "x"})
    assert posted.status_code in (400, 410)  # no CSRF token from a page, or a dead link
    assert session.scalar(select(func.count()).select_from(Evidence)) == before


def test_witness_form_rules(app, session):
    world = make_world(session)
    _request, token = ask_witness(session, world.enrolment, world.learner,
                                  draft="I saw Lee handle the complaint well.")
    session.commit()
    client = app.test_client()
    page = client.get(f"/w/{token}").get_data(True)
    assert "I saw Lee handle the complaint well." in page  # the draft, to correct
    related = _witness_post(client, token, related="yes")
    assert related.status_code == 422 and "relative" in related.get_data(True)
    wrong_name = _witness_post(client, token, typed_name="Somebody Else")
    assert wrong_name.status_code == 422 and "Rachel Osei" in wrong_name.get_data(True)
    no_confirm = _witness_post(client, token, no_customer_data="")
    assert no_confirm.status_code == 422
    assert session.scalar(select(WitnessRequest.status)) == "pending"


def test_relatives_cannot_be_asked(app, session):
    world = make_world(session)
    with pytest.raises(services.ValidationFailed, match="relative"):
        services.request_testimony(session, world.enrolment, actor=world.learner,
                                   data=services.RequestInput(
                                       witness_name="Sam", witness_email="sam@example.org",
                                       witness_role="Driver", organisation="Self",
                                       relationship="My brother", activity="Saw me work",
                                       activity_on=utcnow().date(), activity_place="Home",
                                       criterion_ids=[criterion(session, "2.9").id]),
                                   today=utcnow().date(), link_days=14)


def test_warnings_for_the_assessor(app, session):
    world = make_world(session)
    every = tuple(f"1.{n}" for n in range(1, 9)) + tuple(f"2.{n}" for n in range(1, 10))
    request, token = ask_witness(session, world.enrolment, world.learner,
                                 draft="Lee dealt with the complaint calmly and fully.")
    # A request made before knowledge criteria were refused to witnesses (defect 8) can still
    # name every criterion: the assessor is warned.
    request.criterion_ids = sorted(criterion(session, n).id for n in every)
    session.commit()
    services.sign_testimony(session, token, services.TestimonyInput(
        testimony_md="Lee dealt with the complaint calmly and fully.",
        relationship="Line manager", related=False, no_customer_data=True,
        typed_name="Rachel Osei"))
    session.commit()
    found = " ".join(services.warnings_for(session, request, 17))
    assert "without changing a word" in found
    assert "every criterion of the unit" in found
    # The same witness email signing for many learners.
    from tests.factories import make_enrolment, make_user

    for n in range(3):
        learner = make_user(session, world.learner.centre, "learner", email=f"l{n}@example.org")
        enrolment = make_enrolment(session, learner, world.assessor)
        _other, other_token = ask_witness(session, enrolment, learner)
        services.sign_testimony(session, other_token, services.TestimonyInput(
            testimony_md="I watched them resolve a complaint about a late delivery.",
            relationship="Line manager", related=False, no_customer_data=True,
            typed_name="Rachel Osei"))
    session.commit()
    assert any("same email address" in w for w in services.warnings_for(session, request, 17))


def test_declining_is_recorded(app, session):
    world = make_world(session)
    request, token = ask_witness(session, world.enrolment, world.learner)
    session.commit()
    client = app.test_client()
    page = client.get(f"/w/{token}")
    response = client.post(f"/w/{token}/decline", data={
        "reason": "I am related to the learner", "csrf_token": csrf_from(page.get_data(True))})
    assert response.status_code == 200
    session.expire_all()
    assert session.get(WitnessRequest, request.id).status == "declined"
    assert any("related" in w for w in services.warnings_for(
        session, session.get(WitnessRequest, request.id), 17))
    # A pending request offers its learner "Send again"; a declined one, and anyone who may
    # not ask for testimony (the IQA), get no buttons.
    pending, _token = ask_witness(session, world.enrolment, world.learner)
    session.commit()
    for email, offered in ((world.learner.email, {pending.id}), (world.iqa.email, set())):
        web = Browserless(app.test_client())
        web.login(email, PASSWORD)
        page = web.client.get(f"/enrolments/{world.enrolment.id}/witnesses").get_data(True)
        shown = {n for n in (request.id, pending.id)
                 if f"/witness-requests/{n}/resend" in page}
        assert shown == offered, email


def test_link_pages_are_rate_limited(make_app, session):
    app = make_app(WITNESS_RATE_LIMIT=3)
    client = app.test_client()
    codes = [client.get("/w/guessing-links").status_code for _ in range(5)]
    assert codes[:3] == [410, 410, 410] and codes[3:] == [429, 429]


def test_contacts_are_minimised_after_the_window(app, session):
    world = make_world(session)
    request, token = ask_witness(session, world.enrolment, world.learner)
    session.commit()
    services.sign_testimony(session, token, services.TestimonyInput(
        testimony_md="I saw them resolve the complaint and record it.",
        relationship="Line manager", related=False, no_customer_data=True,
        typed_name="Rachel Osei"))
    request.created_at = utcnow() - timedelta(days=200)
    session.commit()
    result = app.test_cli_runner().invoke(cli, ["witness", "minimise"])
    assert result.exit_code == 0 and "1 witness request" in result.output
    session.expire_all()
    kept = session.get(WitnessRequest, request.id)
    assert kept.witness_email == "" and kept.witness_name == "Rachel Osei"
    assert kept.relationship == "Line manager" and kept.witness_role == "Team leader"
    evidence = session.get(Evidence, kept.evidence_id)
    assert "rachel.osei" not in str(evidence.versions[0].details)


# --- independence: the learner is not their own witness, nor is anyone at the centre -----

def _refused_addresses(world) -> list[tuple[str, str]]:
    return [(" Learner@Example.org ", "own email"), ("LEARNER@example.org", "own email"),
            ("assessor@example.org", "Main Centre"), (" IQA@Example.org", "Main Centre"),
            ("admin@example.org", "Main Centre"), ("Other@Example.ORG ", "Main Centre"),
            ("trainee@example.org", "Main Centre"),
            # The same mailboxes by another name: a "+tag" is delivered to the same inbox.
            ("learner+witness@example.org", "own email"),
            (" Assessor+Rachel@EXAMPLE.org", "Main Centre")]


def test_own_and_centre_addresses_are_refused_on_the_page(app, session):
    world = make_world(session)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    for address, why in _refused_addresses(world):
        page = web.post(f"/enrolments/{world.enrolment.id}/witnesses",
                        _request_form(session, witness_email=address))
        html = page.get_data(True)
        assert page.status_code == 422, address
        # The error sits on the email field and says why.
        assert why in html and 'id="witness_email"' in html and "field-error" in html
    assert session.scalar(select(func.count()).select_from(WitnessRequest)) == 0
    # Someone at another centre may be a witness (an outside colleague's account elsewhere).
    ok = web.post(f"/enrolments/{world.enrolment.id}/witnesses",
                  _request_form(session, witness_email="far-admin@example.org"))
    assert ok.status_code == 302


@pytest.mark.parametrize("who", ["learner", "assessor"])
def test_independence_in_the_service_for_every_requester(app, session, who):
    world = make_world(session)
    actor = world.learner if who == "learner" else world.assessor
    for address, why in _refused_addresses(world):
        with pytest.raises(services.ValidationFailed, match=why) as caught:
            ask_witness(session, world.enrolment, actor, email=address)
        assert caught.value.field == "witness_email"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(WitnessRequest)) == 0


def test_correcting_a_request_cannot_turn_it_to_the_learner(app, session):
    world = make_world(session)
    request, _token = ask_witness(session, world.enrolment, world.learner)
    session.commit()
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    page = web.post(f"/witness-requests/{request.id}/replace",
                    _request_form(session, witness_email=" Learner@Example.org "))
    assert page.status_code == 422 and "own email" in page.get_data(True)
    session.expire_all()
    assert session.get(WitnessRequest, request.id).status == "pending"
    assert session.scalar(select(func.count()).select_from(WitnessRequest)) == 1


def test_an_old_request_to_the_learner_warns_and_cannot_be_resent(app, session):
    world = make_world(session)
    request, token = ask_witness(session, world.enrolment, world.learner)
    staff, _t = ask_witness(session, world.enrolment, world.learner, name="Ivy Iqa",
                            email="someone@work.example")
    session.commit()
    # As made before the rule existed: written straight into the table.
    request.witness_email = "learner@example.org"
    staff.witness_email = "iqa@example.org"
    session.commit()
    services.sign_testimony(session, token, services.TestimonyInput(
        testimony_md="I watched the learner resolve a complaint on the phone.",
        relationship="Line manager", related=False, no_customer_data=True,
        typed_name="Rachel Osei"))
    session.commit()
    own = " ".join(services.warnings_for(session, request, 17))
    assert "learner's own email" in own
    assert "Main Centre" in " ".join(services.warnings_for(session, staff, 17))
    web = Browserless(app.test_client())
    web.login(world.assessor.email, PASSWORD)
    listing = web.client.get(f"/enrolments/{world.enrolment.id}/witnesses").get_data(True)
    assert "learner&#39;s own email" in listing or "learner's own email" in listing
    assert "Ivy Iqa" in listing and "independent of the centre" in listing
    sent = web.post(f"/witness-requests/{staff.id}/resend", {})
    assert sent.status_code == 302
    session.expire_all()
    assert session.get(WitnessRequest, staff.id).sent_count == 1
    follow = web.client.get(sent.headers["Location"]).get_data(True)
    assert "Not sent again" in follow


def test_the_witness_page_names_the_centre(app, session):
    world = make_world(session)
    _request, token = ask_witness(session, world.enrolment, world.learner)
    session.commit()
    page = app.test_client().get(f"/w/{token}").get_data(True)
    assert "This request comes from <strong>Main Centre</strong>" in page


def test_an_address_that_later_became_a_centre_account_warns(app, session):
    world = make_world(session)
    request, token = ask_witness(session, world.enrolment, world.learner,
                                 email="rachel.osei@work.example")
    session.commit()
    services.sign_testimony(session, token, services.TestimonyInput(
        testimony_md="I watched the learner resolve a complaint on the phone.",
        relationship="Line manager", related=False, no_customer_data=True,
        typed_name="Rachel Osei"))
    session.commit()
    assert services.warnings_for(session, request, 17) == []
    # Months later the same person is given an account at the centre (here: as a learner).
    make_user(session, world.learner.centre, "learner", email="rachel.osei@work.example",
              name="Rachel Osei")
    session.commit()
    warned = " ".join(services.warnings_for(session, request, 17))
    assert "Main Centre" in warned and "another learner" in warned and "Rachel Osei" in warned
    web = Browserless(app.test_client())
    web.login(world.assessor.email, PASSWORD)
    listing = web.client.get(f"/enrolments/{world.enrolment.id}/witnesses").get_data(True)
    assert "independent of the centre" in listing


def test_a_recorded_testimony_naming_the_learner_or_staff_as_contact_warns(app, session):
    world = make_world(session)
    details = {"witness_name": "Rachel Osei", "witness_role": "Team leader",
               "relationship": "Line manager"}
    own = make_evidence(session, world.enrolment, world.learner, "witness_testimony",
                        title="Paper testimony one", maps=("2.9",), submit=True,
                        details={**details, "witness_contact": " Learner@Example.org "})
    staff = make_evidence(session, world.enrolment, world.learner, "witness_testimony",
                          title="Paper testimony two", maps=("2.9",), submit=True,
                          details={**details,
                                   "witness_contact": "Phone 0161 496 0000 or IQA@example.org."})
    outside = make_evidence(session, world.enrolment, world.learner, "witness_testimony",
                            title="Paper testimony three", maps=("2.9",),
                            submit=True,
                            details={**details, "witness_contact": "rachel@acme.example"})
    session.commit()
    warned = {w.evidence_id: w.message
              for w in services.recorded_testimony_warnings(session, world.enrolment)}
    assert set(warned) == {own.id, staff.id}, warned
    assert "learner's own email" in warned[own.id]
    assert "Main Centre" in warned[staff.id] and "Ivy Iqa" in warned[staff.id]
    assert outside.id not in warned
    web = Browserless(app.test_client())
    web.login(world.assessor.email, PASSWORD)
    listing = web.client.get(f"/enrolments/{world.enrolment.id}/witnesses").get_data(True)
    assert "Testimonies to check" in listing and "Paper testimony one" in listing
    assert f"/evidence/{staff.id}" in listing and "Paper testimony three" not in listing
    # All three are in the status list, as testimonies recorded on paper.
    paper = listing[listing.index("Recorded on paper"):listing.index("Testimonies to check")]
    assert paper.count("Rachel Osei") == 3 and f"/evidence/{outside.id}" in paper


def test_a_mailbox_is_compared_not_the_spelling_of_its_address(app, session):
    assert services.mailbox_of(" Lee.Learner+W@Example.ORG ") == "lee.learner@example.org"
    assert services.mailbox_of("l.e.e+x@GoogleMail.com") == "lee@gmail.com"
    assert services.mailbox_of("rachel.osei@work.example") == "rachel.osei@work.example"
    world = make_world(session)
    make_user(session, world.learner.centre, "learner", email="sam.staff@gmail.com",
              name="Sam Gmail")
    session.commit()
    with pytest.raises(services.ValidationFailed, match="Main Centre"):
        ask_witness(session, world.enrolment, world.learner, email="SamStaff+w@googlemail.com")
    session.rollback()
    # An outside witness's own "+tag" or dotted address is fine.
    ask_witness(session, world.enrolment, world.learner, email="rachel+cc@work.example")
    ask_witness(session, world.enrolment, world.learner, email="sam.staff@outlook.example")
    session.commit()


def test_a_witness_is_not_offered_criteria_it_cannot_evidence(app, session):
    """Defect 8: knowledge criteria (Unit 40 LO1) and 2.4/2.5 accept no witness testimony."""
    from portfolio.errors import ValidationFailed
    from portfolio.models import CriterionMethod
    from tests.conftest import Browserless

    world = make_world(session)
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    path = f"/enrolments/{world.enrolment.id}/witnesses"
    page = web.client.get(path).get_data(True)
    knowledge, observed = criterion(session, "1.1"), criterion(session, "2.9")
    box = re.compile(r'<input[^>]*value="(\d+)"[^>]*>')
    disabled = {int(m.group(1)) for m in box.finditer(page) if "disabled" in m.group(0)}
    assert knowledge.id in disabled and criterion(session, "2.4").id in disabled
    assert observed.id not in disabled and criterion(session, "2.2").id not in disabled
    assert "1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8 (knowledge): the unit asks for " \
           "professional discussion or reflective account." in page
    # Sent anyway (an old page, a hand-made request): refused on the field, nothing sent.
    sent = web.post(path, _request_form(session, criterion_ids=[str(knowledge.id),
                                                                str(observed.id)]))
    html = sent.get_data(True)
    assert sent.status_code == 422
    assert 'id="criterion_ids-error"' in html
    assert "A witness cannot evidence 1.1: for 1.1 the unit asks for professional " \
           "discussion or reflective account." in html
    assert session.scalar(select(func.count()).select_from(WitnessRequest)) == 0
    with pytest.raises(ValidationFailed, match="cannot evidence 2.4 and 2.5"):
        ask_witness(session, world.enrolment, world.learner, numbers=("2.4", "2.5", "2.9"))
    session.rollback()
    # The rule is the unit's data, not a list in the code: let 1.1 accept a witness, and it may.
    session.add(CriterionMethod(criterion_id=knowledge.id, method="witness_testimony"))
    session.commit()
    assert web.post(path, _request_form(session, criterion_ids=[str(knowledge.id)])
                    ).status_code == 302
