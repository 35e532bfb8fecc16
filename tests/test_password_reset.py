"""Self-service password reset (issue 17): the same answer for every address, links that work
once, expire, die when a newer one is sent and cannot be forged, rate limits, and every other
session ended when a link is used."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from portfolio.db import utcnow
from portfolio.models import AuditEvent, PasswordReset, User
from tests.conftest import Browserless, csrf_from
from tests.factories import PASSWORD, make_world

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"(/reset/pwr_[A-Za-z0-9_-]+)")


def _ask(client, email: str):
    page = client.get("/forgot")
    return client.post("/forgot", data={"email": email,
                                        "csrf_token": csrf_from(page.get_data(True))})


def _outbox(app) -> list[str]:
    return sorted((p.read_text() for p in Path(app.config["OUTBOX_DIR"]).glob("*.eml")),
                  key=len)


def _links(app) -> list[str]:
    found = []
    mails = Path(app.config["OUTBOX_DIR"]).glob("*.eml")
    for path in sorted(mails, key=lambda p: p.stat().st_mtime_ns):
        match = LINK.search(path.read_text().replace("=\n", ""))
        if match:
            found.append(match.group(1))
    return found


def _set(client, link: str, password: str = NEW_PASSWORD, again: str | None = None):
    page = client.get(link)
    form_page = page if page.status_code == 200 else client.get("/forgot")
    token = csrf_from(form_page.get_data(True))
    return client.post(link, data={"new_password": password,
                                    "confirm_password": again or password, "csrf_token": token})


def _without_token(html: str) -> str:
    return re.sub(r'name="csrf_token"[^>]*>', "", html)


def test_the_answer_is_the_same_whether_or_not_the_account_exists(app, session):
    world = make_world(session)
    client = app.test_client()
    known = _ask(client, world.learner.email)
    unknown = _ask(client, "nobody-here@example.org")
    inactive_user = world.other_learner
    inactive_user.is_active = False
    session.commit()
    inactive = _ask(client, inactive_user.email)
    assert known.status_code == unknown.status_code == inactive.status_code == 200
    assert _without_token(known.get_data(True)) == _without_token(unknown.get_data(True))
    assert _without_token(known.get_data(True)) == _without_token(inactive.get_data(True))
    assert "If an account uses that address" in known.get_data(True)
    # Only the real, active account got an email.
    mails = _outbox(app)
    assert len(mails) == 1 and world.learner.email in mails[0]
    # The link is stored as a hash only.
    raw = _links(app)[0].rsplit("/", 1)[1]
    assert session.scalar(select(func.count()).select_from(PasswordReset)) == 1
    assert raw not in str(session.scalar(select(PasswordReset.token_hash)))
    # The audit trail says a reset was asked for, without the address or the link.
    detail = str(list(session.scalars(select(AuditEvent.detail).where(
        AuditEvent.action == "user.reset_requested"))))
    assert raw not in detail and world.learner.email not in detail


def test_a_link_sets_the_password_once_and_ends_every_other_session(app, session):
    world = make_world(session)
    elsewhere = Browserless(app.test_client())
    assert elsewhere.login(world.learner.email, PASSWORD).status_code == 302
    client = app.test_client()
    _ask(client, world.learner.email)
    link = _links(app)[0]
    assert "Choose a new password" in client.get(link).get_data(True)
    done = _set(client, link)
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    # The other browser is signed out; the old password no longer works; the new one does.
    assert elsewhere.client.get("/account").status_code == 302
    assert Browserless(app.test_client()).login(world.learner.email, PASSWORD).status_code == 401
    assert Browserless(app.test_client()).login(world.learner.email,
                                                NEW_PASSWORD).status_code == 302
    # Used: the link is refused from now on, and says so.
    again = client.get(link)
    assert again.status_code == 410 and "used already" in again.get_data(True)
    assert _set(client, link, "another new passphrase").status_code == 410


def test_refused_links_say_why(app, session):
    world = make_world(session)
    client = app.test_client()
    _ask(client, world.learner.email)
    (older,) = _links(app)
    _ask(client, world.learner.email)
    (newer,) = set(_links(app)) - {older}
    replaced = client.get(older)
    assert replaced.status_code == 410 and "newer link" in replaced.get_data(True)
    forged = client.get("/reset/pwr_" + "A" * 43)
    assert forged.status_code == 410 and "not one we sent" in forged.get_data(True)
    assert client.get("/reset/anything-at-all").status_code == 410
    session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    expired = client.get(newer)
    assert expired.status_code == 410 and "expired" in expired.get_data(True)
    assert _set(client, newer).status_code == 410
    session.expire_all()
    assert session.get(User, world.learner.id).password_hash == world.learner.password_hash


def test_a_short_password_keeps_the_link_usable(app, session):
    world = make_world(session)
    client = app.test_client()
    _ask(client, world.learner.email)
    link = _links(app)[0]
    short = _set(client, link, "short")
    assert short.status_code == 422 and "at least" in short.get_data(True)
    differ = _set(client, link, NEW_PASSWORD, "something else entirely")
    assert differ.status_code == 422 and "differ" in differ.get_data(True)
    assert _set(client, link).status_code == 302


def test_requests_are_limited_per_address_and_per_client(make_app):
    app = make_app(RESET_MAX_PER_ACCOUNT=2, RESET_MAX_PER_CLIENT=5)
    from portfolio.db import get_database

    s = get_database(app).sessionmaker()
    world = make_world(s)
    s.close()
    client = app.test_client()
    answers = [_ask(client, world.learner.email).status_code for _ in range(3)]
    assert answers == [200, 200, 200]  # the third looks the same to the asker...
    assert len(_links(app)) == 2  # ...but sends nothing
    assert _ask(client, "someone@example.org").status_code == 200
    assert _ask(client, "another@example.org").status_code == 200
    over = _ask(client, "third@example.org")
    assert over.status_code == 429 and over.headers["Retry-After"] == "3600"
    assert "Too many requests" in over.get_data(True)
