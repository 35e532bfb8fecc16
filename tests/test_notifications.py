"""Notifications: who is told about each event (never the actor), the bell and list, and email
(immediate, daily digest, off) sent from the queue exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from portfolio.assessment.services import countersign_decision, review_evidence
from portfolio.audit import record_event
from portfolio.models import AuditEvent, Notification, User
from portfolio.notifications.sending import digest_cutoff, send_due_emails
from portfolio.witness.services import decline
from tests.factories import (
    LIMITS,
    PASSWORD,
    make_eqa_pack,
    make_evidence,
    make_world,
    sign_as,
)
from tests.sampling_setup import make_sampling, sign_off_whole_unit
from tests.test_notify import Collect, _free_port


def _told(session, action: str) -> dict[str, set[str]]:
    """{kind: {recipient emails}} for the notifications the newest `action` event caused."""
    seq = session.scalar(select(AuditEvent.seq).where(AuditEvent.action == action)
                         .order_by(AuditEvent.seq.desc()).limit(1))
    assert seq is not None, f"no {action} event"
    found: dict[str, set[str]] = {}
    for n in session.scalars(select(Notification).where(Notification.audit_seq == seq)):
        found.setdefault(n.kind, set()).add(session.get(User, n.recipient_id).email)
    return found


def _actor_never_told(session) -> None:
    pairs = session.execute(select(Notification.recipient_id, AuditEvent.actor_id).join(
        AuditEvent, AuditEvent.seq == Notification.audit_seq)).all()
    assert pairs and all(recipient != actor for recipient, actor in pairs)


@pytest.fixture
def world(app, session):
    return make_world(session, app.config["STORAGE_DIR"])


def test_the_loop_tells_the_person_who_must_act_next(session, world):
    w = world
    # make_world enrolled three learners (no actor), submitted, accepted and had a trainee decide.
    assert _told(session, "enrolment.create") == {
        "enrolled": {"far-learner@example.org", "far-assessor@example.org"}}
    first = session.scalars(select(Notification).where(
        Notification.recipient_id == w.learner.id, Notification.kind == "enrolled")).one()
    assert first.title == "You were enrolled on unit 40, " + w.unit.title
    assert first.link == f"/enrolments/{w.enrolment.id}" and first.learner_id == w.learner.id
    # The trainee's decision: the learner hears of it; every qualified assessor of the centre
    # who may countersign is asked; the trainee (actor), and other centres, are not.
    assert _told(session, "signature.criterion_decision") == {
        "criterion_decided": {"other@example.org"},
        "countersign_asked": {"assessor@example.org"}}
    asked = session.scalars(select(Notification).where(Notification.kind == "countersign_asked")
                            ).one()
    assert asked.link == "/countersign" and "Tom Trainee" in asked.title
    assert "signature." not in asked.title and "#" not in asked.title

    evidence = make_evidence(session, w.enrolment, w.learner, maps=("1.1",), submit=True)
    assert _told(session, "evidence.submit") == {"evidence_submitted": {"assessor@example.org"}}
    review_evidence(session, evidence, actor=w.assessor, outcome="referred",
                    feedback_md="Say what you did next.", varcs={},
                    expected_version=evidence.current_version)
    assert _told(session, "evidence.referred") == {"evidence_referred": {"learner@example.org"}}

    from portfolio.models import CriterionDecision

    decision = session.get(CriterionDecision, w.trainee_decision_id)
    countersign_decision(session, decision, actor=w.assessor, confirmation=sign_as(w.assessor),
                         **LIMITS)
    assert _told(session, "signature.countersignature") == {
        "decision_countersigned": {"trainee@example.org"}}

    decline(session, w.witness_token_to_decline, "I was not there.")
    assert _told(session, "witness.decline") == {"witness_declined": {"learner@example.org"}}
    make_eqa_pack(session, w)
    assert _told(session, "eqa.pack_create") == {"eqa_pack_shared": {"eqa@example.org"}}
    session.commit()
    _actor_never_told(session)


def test_unit_signoff_cosign_and_iqa_actions(session, world):
    w = world
    ids = make_sampling(session, w)
    assert _told(session, "iqa.outcome_recorded") == {"iqa_action": {"assessor@example.org"}}
    action = session.scalars(select(Notification).where(Notification.kind == "iqa_action")).one()
    assert action.link == f"/iqa/samples/{ids.completed_sample_id}"
    sign_off_whole_unit(session, w.enrolment, w.learner, w.assessor)
    assert _told(session, "signature.unit_signoff") == {
        "unit_signed_off": {"learner@example.org"}}
    co_sign = session.scalars(select(Notification).where(Notification.kind == "unit_signed_off")
                              ).one()
    assert co_sign.title.startswith("Co-sign your unit")
    assert co_sign.link == f"/enrolments/{w.enrolment.id}/sign-off"
    assert _told(session, "signature.unit_cosign") == {"unit_cosigned": {"assessor@example.org"}}
    _actor_never_told(session)


def test_comments_and_returned_decisions_and_unknown_actions(session, world):
    w = world
    evidence = w.evidence
    record_event(session, action="comment.added", subject_type="evidence",
                 subject_id=evidence.id, actor=w.assessor, learner_id=w.learner.id,
                 detail={"comment_id": 7})
    assert _told(session, "comment.added") == {
        "comment_added": {"learner@example.org", "iqa@example.org"}}
    note = session.scalars(select(Notification).where(Notification.kind == "comment_added")
                           ).first()
    assert note.link == f"/evidence/{evidence.id}#comment-7"
    assert note.title == "Asha Assessor commented on “Reply letter”"
    record_event(session, action="signature.decision_return", subject_type="signature",
                 subject_id=999, actor=w.assessor,
                 learner_id=w.other_learner.id, detail={"decision_id": w.trainee_decision_id})
    assert _told(session, "signature.decision_return") == {
        "decision_returned": {"trainee@example.org"}}
    before = session.query(Notification).count()
    record_event(session, action="login", subject_type="user", subject_id=w.learner.id,
                 actor=w.learner)
    record_event(session, action="evidence.submit", subject_type="evidence",
                 subject_id=evidence.id, learner_id=w.learner.id,
                 detail={"imported": {"bundle_sha256": "0" * 64}})
    assert session.query(Notification).count() == before


def test_nobody_is_told_about_what_they_may_not_see(session, world):
    w = world
    w.iqa.is_active = False  # a deactivated IQA hears nothing
    session.flush()
    record_event(session, action="comment.added", subject_type="evidence",
                 subject_id=w.evidence.id, actor=w.learner, learner_id=w.learner.id,
                 detail={"comment_id": 8})
    assert _told(session, "comment.added") == {"comment_added": {"assessor@example.org"}}


def _login(web, email):
    web.login(email, PASSWORD)


def test_bell_list_open_and_settings(app, session, world, web, client):
    w = world
    own = session.scalars(select(Notification).where(Notification.recipient_id == w.learner.id)
                          ).all()
    theirs = session.scalars(select(Notification).where(
        Notification.recipient_id == w.assessor.id)).first()
    unread = len(own)
    assert unread >= 1
    _login(web, "learner@example.org")
    home = client.get("/").get_data(True)
    assert f'class="bell" aria-label="Notifications, {unread} unread"' in home
    assert f'<span class="count">{unread}</span>' in home
    # Someone else's notification looks like one that does not exist, and stays unread.
    assert client.get(f"/notifications/{theirs.id}").status_code == 404
    session.refresh(theirs)
    assert theirs.read_at is None
    # Opening one marks it read and goes where it points.
    opened = client.get(f"/notifications/{own[0].id}")
    assert opened.status_code == 302 and opened.headers["Location"] == own[0].link
    home = client.get("/").get_data(True)
    assert f"<span class=\"count\">{unread - 1}</span>" in home or unread == 1
    page = client.get("/notifications")
    html = page.get_data(True)
    assert page.status_code == 200 and own[0].title in html and theirs.title not in html
    assert html.count(">New</span>") == unread - 1
    session.expire_all()
    assert session.scalar(select(Notification.id).where(
        Notification.recipient_id == w.learner.id, Notification.read_at.is_(None))) is None
    assert 'aria-label="Notifications, none unread"' in client.get("/notifications").get_data(True)
    # Email frequency: daily by default; a choice is kept; nonsense is refused.
    assert session.get(User, w.learner.id).email_notifications == "daily"
    assert web.post("/notifications/settings", {"email_notifications": "weekly"}
                    ).status_code == 422
    assert web.post("/notifications/settings", {"email_notifications": "off"}
                    ).status_code == 302
    session.expire_all()
    assert session.get(User, w.learner.id).email_notifications == "off"


def test_read_all(session, world, web, client):
    _login(web, "assessor@example.org")
    assert web.post("/notifications/read-all").status_code == 302
    session.expire_all()
    assert session.scalar(select(Notification.id).where(
        Notification.recipient_id == world.assessor.id, Notification.read_at.is_(None))) is None
    assert session.scalar(select(Notification.id).where(
        Notification.recipient_id == world.learner.id, Notification.read_at.is_(None)))


@pytest.fixture
def smtp():
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": controller.port, "SMTP_STARTTLS": False,
               "PUBLIC_URL": "https://portfolio.example.ac.uk/", "NOTIFY_DIGEST_HOUR": 7,
               "NOTIFY_TIMEZONE": "Europe/London"}, handler
    finally:
        controller.stop()


def _mail(envelope) -> str:
    return envelope.content.decode()


def test_digest_moment_is_the_last_local_digest_hour():
    config = {"NOTIFY_DIGEST_HOUR": 7, "NOTIFY_TIMEZONE": "Europe/London"}
    summer = datetime(2026, 7, 1, 5, 59, tzinfo=UTC)  # 06:59 in London
    assert digest_cutoff(summer, config) == datetime(2026, 6, 30, 6, 0, tzinfo=UTC)
    assert digest_cutoff(summer + timedelta(minutes=1), config) == datetime(2026, 7, 1, 6, 0,
                                                                            tzinfo=UTC)
    winter = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert digest_cutoff(winter, config) == winter


def test_immediate_daily_and_off_each_sent_once(session, world, smtp):
    config, handler = smtp
    w = world
    session.get(User, w.assessor.id).email_notifications = "immediate"
    session.get(User, w.trainee.id).email_notifications = "off"
    session.commit()
    created = min(session.scalars(select(Notification.created_at)))
    day = created.astimezone(UTC).date()
    # Before the next digest hour only the "immediate" assessor is emailed, at once.
    first = send_due_emails(session, config, created)
    assert (first.immediate, first.digests) == (1, 0)
    assert [e.rcpt_tos for e in handler.envelopes] == [["assessor@example.org"]]
    body = _mail(handler.envelopes[0])
    assert "https://portfolio.example.ac.uk/notifications/" in body
    # Running again (or a second sender) sends nothing more.
    assert (send_due_emails(session, config, created).immediate, len(handler.envelopes)) == (
        0, 1)
    # After the next digest hour: one digest per "daily" person with unread notifications;
    # the trainee ("off") gets nothing.
    tomorrow = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + \
        timedelta(hours=9)
    daily = send_due_emails(session, config, tomorrow)
    recipients = sorted(e.rcpt_tos[0] for e in handler.envelopes[1:])
    assert daily.digests == len(recipients) and "trainee@example.org" not in recipients
    assert "learner@example.org" in recipients and "assessor@example.org" not in recipients
    digest = next(_mail(e) for e in handler.envelopes[1:] if e.rcpt_tos == ["learner@example.org"])
    assert "Your daily summary" in digest and "You were enrolled on unit 40" in digest
    assert send_due_emails(session, config, tomorrow + timedelta(hours=1)).digests == 0
    unsent = session.scalars(select(Notification).where(Notification.emailed_at.is_(None))).all()
    assert {n.recipient_id for n in unsent} == {w.trainee.id}


def test_two_senders_never_send_the_same_row(app, session, world, smtp):
    from portfolio.db import get_database

    config, handler = smtp
    for person in session.scalars(select(User)):
        person.email_notifications = "immediate"
    session.commit()
    other = get_database(app).sessionmaker()
    now = datetime.now(UTC)
    try:
        # The second sender read the same due rows before the first claimed them.
        from portfolio.notifications import sending

        real_claim = sending._claim
        results = []

        def claim_after_the_other(s, ids, at):
            if not results:
                results.append(None)  # the other sender runs once, claiming for real
                results[0] = send_due_emails(other, config, now)
            return real_claim(s, ids, at)

        sending._claim = claim_after_the_other
        try:
            mine = send_due_emails(session, config, now)
        finally:
            sending._claim = real_claim
    finally:
        other.close()
    people = {e.rcpt_tos[0] for e in handler.envelopes}
    assert len(handler.envelopes) == len(people) == results[0].immediate
    assert mine.immediate == 0


def test_failed_delivery_is_retried(session, world):
    config = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": _free_port(), "SMTP_STARTTLS": False,
              "PUBLIC_URL": "http://x"}
    session.get(User, world.learner.id).email_notifications = "immediate"
    session.commit()
    result = send_due_emails(session, config, datetime.now(UTC))
    assert result.failed >= 1 and result.immediate == 0
    assert session.scalar(select(Notification.id).where(
        Notification.recipient_id == world.learner.id, Notification.emailed_at.isnot(None))
    ) is None


def test_cli_sends_to_the_outbox(app, session, world):
    from pathlib import Path

    from portfolio.cli import cli

    session.get(User, world.learner.id).email_notifications = "immediate"
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["notifications", "send"])
    assert result.exit_code == 0, result.output
    assert "1 immediate email(s)" in result.output
    files = list(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
    assert any("learner@example.org" in f.read_text() for f in files)
