"""Email notifications: real SMTP on loopback, the .eml outbox, sending after success only, and
the Outbox pages' access rules."""

from __future__ import annotations

import logging
import os
import socket
import stat
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import abort, redirect

from portfolio import notify
from portfolio.notify import Message
from portfolio.outbox.views import NAME_RE
from portfolio.outbox.views import bp as outbox_bp
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_centre, make_user

SUBJECT = "Evidence referred back: Reply letter"
BODY = "Your assessor referred back “Reply letter”.\nSee their feedback and resubmit.\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Collect:
    """aiosmtpd handler keeping every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _smtp_config(controller, **extra):
    config = {"SMTP_HOST": controller.hostname, "SMTP_PORT": controller.port,
              "SMTP_STARTTLS": False}
    config.update(extra)
    return config


def _parse(data: bytes):
    return BytesParser(policy=policy.default).parsebytes(data)


def _personal_data_absent(text: str, *values: str) -> None:
    for value in values:
        assert value not in text


# --- sending ------------------------------------------------------------------------------------

def test_send_delivers_subject_body_and_recipients_over_smtp(smtp_server, caplog):
    controller, handler = smtp_server
    caplog.set_level(logging.INFO, logger="portfolio.notify")
    message = Message(to=("lee@example.org", "asha@example.org", "lee@example.org"),
                      subject=SUBJECT, body=BODY)

    message_id = notify.send(message, config=_smtp_config(controller))

    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "no-reply@localhost"
    assert envelope.rcpt_tos == ["lee@example.org", "asha@example.org"]  # each address once
    mail = _parse(envelope.original_content)
    assert mail["Subject"] == SUBJECT
    assert mail["From"] == notify.DEFAULT_FROM
    assert mail["Message-ID"] == message_id
    assert mail["Date"]
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == BODY
    # The log says that something was sent, never to whom or what.
    assert "notification sent" in caplog.text
    _personal_data_absent(caplog.text, "lee@example.org", "asha@example.org", SUBJECT,
                          "Reply letter")


def test_smtp_login_and_sender_come_from_config():
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((mechanism, auth_data))
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(),
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        config = _smtp_config(controller, SMTP_USERNAME="mailer", SMTP_PASSWORD="s3cret",
                              SMTP_FROM="Northgate <notices@northgate.example>")
        message_id = notify.send(Message(("lee@example.org",), SUBJECT, BODY), config=config)
    finally:
        controller.stop()
    assert seen and seen[0][1].login == b"mailer"
    assert handler.envelopes[0].mail_from == "notices@northgate.example"
    assert message_id.endswith("@northgate.example>")


def test_without_smtp_host_an_eml_is_written_atomically_to_the_outbox(tmp_path):
    outbox = tmp_path / "outbox"
    path = Path(notify.send(Message(("lee@example.org",), SUBJECT, BODY),
                            config={"OUTBOX_DIR": str(outbox)}))

    assert path.parent == outbox
    assert NAME_RE.fullmatch(path.name)
    assert os.listdir(outbox) == [path.name]  # no temporary file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # RFC 5322 line ends
    mail = _parse(raw)
    assert mail["To"] == "lee@example.org"
    assert mail["Subject"] == SUBJECT
    assert mail["Date"] and mail["Message-ID"]
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == BODY


def test_a_subject_cannot_inject_headers(tmp_path):
    path = notify.send(Message(("lee@example.org",), "Hello\r\nBcc: evil@example.org", BODY),
                       config={"OUTBOX_DIR": str(tmp_path)})
    mail = _parse(Path(path).read_bytes())
    assert mail["Bcc"] is None
    assert mail["Subject"] == "Hello Bcc: evil@example.org"


def test_outbox_defaults_to_the_instance_folder(make_app):
    app = make_app(OUTBOX_DIR="")
    notify.init_app(app)
    assert app.config["OUTBOX_DIR"] == str(Path(app.instance_path) / "outbox")
    assert notify.default_outbox_dir("/srv/instance") == "/srv/instance/outbox"


def test_connection_failure_returns_none_and_logs_no_personal_data(make_app, caplog):
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=_free_port(), SMTP_STARTTLS=False)
    caplog.set_level(logging.INFO, logger="portfolio.notify")
    with app.app_context():
        assert notify.notify(["lee@example.org"], SUBJECT, BODY) is None
    assert "notification not sent: ConnectionRefusedError" in caplog.text
    _personal_data_absent(caplog.text, "lee@example.org", SUBJECT, "referred back")


def test_starttls_refused_by_the_server_is_a_quiet_failure(make_app, smtp_server, caplog):
    controller, handler = smtp_server
    app = make_app(**_smtp_config(controller, SMTP_STARTTLS=True))
    with app.app_context():
        assert notify.notify(["lee@example.org"], SUBJECT, BODY) is None
    assert handler.envelopes == []
    assert "notification not sent: SMTPNotSupportedError" in caplog.text


def test_notify_with_nobody_to_tell_sends_nothing(make_app, tmp_path):
    app = make_app(OUTBOX_DIR=str(tmp_path / "outbox"))
    with app.app_context():
        assert notify.notify([], SUBJECT, BODY) is None
        assert notify.notify(["  "], SUBJECT, BODY) is None
    assert not (tmp_path / "outbox").exists()


# --- queued until the request has succeeded ------------------------------------------------------

def test_queued_messages_go_out_only_after_a_successful_response(make_app, smtp_server):
    controller, handler = smtp_server
    app = make_app(PROPAGATE_EXCEPTIONS=False, **_smtp_config(controller))
    notify.init_app(app)
    notify.init_app(app)  # idempotent: a second call must not send twice

    def queue_one(label: str) -> None:
        before = len(handler.envelopes)
        notify.queue(Message(("lee@example.org",), label, BODY))
        assert len(handler.envelopes) == before, "sent before the view finished"
        assert [m.subject for m in notify.queued()] == [label]

    @app.get("/_test/ok")
    def ok():
        queue_one("ok")
        return "done"

    @app.get("/_test/redirect")
    def moved():
        queue_one("redirect")
        return redirect("/")

    @app.get("/_test/refused")
    def refused():
        queue_one("refused")
        abort(409)

    @app.get("/_test/crash")
    def crash():
        queue_one("crash")
        raise RuntimeError("database commit failed")

    client = app.test_client()
    assert client.get("/_test/refused").status_code == 409
    assert client.get("/_test/crash").status_code == 500
    assert handler.envelopes == []
    assert client.get("/_test/ok").status_code == 200
    assert client.get("/_test/redirect").status_code == 302
    subjects = [_parse(e.original_content)["Subject"] for e in handler.envelopes]
    assert subjects == ["ok", "redirect"]


def test_a_failed_send_does_not_break_the_request(make_app):
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=_free_port(), SMTP_STARTTLS=False)
    notify.init_app(app)

    @app.get("/_test/ok")
    def ok():
        notify.queue(Message(("lee@example.org",), SUBJECT, BODY))
        return "saved"

    response = app.test_client().get("/_test/ok")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "saved"


# --- the Outbox pages ----------------------------------------------------------------------------

@pytest.fixture
def app(make_app, tmp_path):
    """The suite's app with the Outbox registered (until create_app does so itself)."""
    app = make_app(OUTBOX_DIR=str(tmp_path / "outbox"))
    if "outbox" not in app.blueprints:
        app.register_blueprint(outbox_bp)
    notify.init_app(app)
    return app


@pytest.fixture
def mailbox(app, session):
    centre = make_centre(session, "Outbox Centre")
    people = {
        "admin": make_user(session, centre, "admin", email="admin@example.org"),
        "learner": make_user(session, centre, "learner", email="learner@example.org"),
        "other": make_user(session, centre, "learner", email="other@example.org"),
        "assessor": make_user(session, centre, "assessor", email="assessor@example.org"),
    }
    session.commit()
    with app.app_context():
        mine = Path(notify.notify(["Learner@Example.org"], "Referred back: Reply letter",
                                  "Please add the <script>alert(1)</script> date.")).name
        theirs = Path(notify.notify(["other@example.org"], "Referred back: Complaint log",
                                    "Other learner's feedback.")).name
    return people, mine, theirs


def _signed_in(app, email: str | None) -> Browserless:
    browser = Browserless(app.test_client())
    if email:
        response = browser.login(email, PASSWORD)
        assert response.status_code == 302
    return browser


def test_admin_sees_every_message(app, mailbox):
    _people, mine, theirs = mailbox
    browser = _signed_in(app, "admin@example.org")
    page = browser.client.get("/outbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Referred back: Reply letter" in html and "Referred back: Complaint log" in html
    assert html.index("Complaint log") < html.index("Reply letter")  # newest first
    for name in (mine, theirs):
        assert browser.client.get(f"/outbox/{name}").status_code == 200


def test_a_learner_sees_only_messages_addressed_to_them(app, mailbox):
    _people, mine, theirs = mailbox
    browser = _signed_in(app, "learner@example.org")
    html = browser.client.get("/outbox").get_data(as_text=True)
    assert "Referred back: Reply letter" in html
    assert "Complaint log" not in html and "other@example.org" not in html

    page = browser.client.get(f"/outbox/{mine}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "Learner@Example.org" in body and "no-reply@localhost" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body

    # Someone else's message looks exactly like one that does not exist.
    assert browser.client.get(f"/outbox/{theirs}").status_code == 404


def test_staff_not_addressed_see_nothing(app, mailbox):
    _people, mine, theirs = mailbox
    browser = _signed_in(app, "assessor@example.org")
    page = browser.client.get("/outbox")
    assert page.status_code == 200
    assert "Referred back" not in page.get_data(as_text=True)
    for name in (mine, theirs):
        assert browser.client.get(f"/outbox/{name}").status_code == 404


def test_names_outside_the_outbox_list_are_not_found(app, mailbox, tmp_path):
    _people, mine, _theirs = mailbox
    outbox = Path(app.config["OUTBOX_DIR"])
    secret = tmp_path / "20260101T000000Z-0123456789abcdef.eml"
    secret.write_bytes((outbox / mine).read_bytes())
    (outbox / "20260101T000001Z-fedcba9876543210.eml").symlink_to(secret)
    (outbox / "notes.eml").write_bytes((outbox / mine).read_bytes())
    browser = _signed_in(app, "admin@example.org")
    for path in (
        "/outbox/..%2F20260101T000000Z-0123456789abcdef.eml",
        "/outbox/../20260101T000000Z-0123456789abcdef.eml",
        "/outbox/..%5C" + mine,
        "/outbox/%2Fetc%2Fpasswd",
        "/outbox/20260101T000000Z-0123456789abcdef.eml",  # right shape, not in the outbox
        "/outbox/20260101T000001Z-fedcba9876543210.eml",  # a symlink pointing elsewhere
        "/outbox/notes.eml",  # in the outbox, but not a name notify writes
        "/outbox/" + mine.upper(),
        "/outbox/" + mine.removesuffix(".eml") + ".EML",
    ):
        assert browser.client.get(path).status_code == 404, path
    html = browser.client.get("/outbox").get_data(as_text=True)
    assert "notes.eml" not in html and "fedcba9876543210" not in html


def test_anonymous_visitors_are_sent_to_sign_in(app, mailbox):
    _people, mine, _theirs = mailbox
    client = app.test_client()
    for path in ("/outbox", f"/outbox/{mine}"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_an_empty_or_missing_outbox_is_a_friendly_page(app, session):
    centre = make_centre(session, "Empty Centre")
    make_user(session, centre, "learner", email="quiet@example.org")
    session.commit()
    page = _signed_in(app, "quiet@example.org").client.get("/outbox")
    assert page.status_code == 200
    assert "no emails here yet" in page.get_data(as_text=True)
