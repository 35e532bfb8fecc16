"""Server-side sessions: a cookie stops working the moment its session is ended, however copied."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select, update

from portfolio.auth.services import create_api_token
from portfolio.db import utcnow
from portfolio.models import AuditEvent, LoginSession, User
from tests.conftest import Browserless, csrf_from
from tests.factories import PASSWORD, make_centre, make_user

ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/131.0.0.0 Mobile Safari/537.36")
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _person(session, *roles, **kw) -> User:
    user = make_user(session, make_centre(session), *roles or ("learner",), **kw)
    session.commit()
    return user


def _browser(app, user: User, user_agent: str = WINDOWS_FIREFOX) -> Browserless:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    web = Browserless(client)
    assert web.login(user.email, PASSWORD).status_code == 302
    return web


def _copy_cookies(app, source) -> object:
    """A second browser holding exactly the cookies the first one had: a stolen cookie jar."""
    thief = app.test_client()
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = source.get_cookie(name)
    assert cookie is not None, "no session cookie to copy"
    thief.set_cookie(name, cookie.value, domain=cookie.domain, path=cookie.path)
    return thief


def _signed_in(client) -> bool:
    response = client.get("/account")
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
        return False
    assert response.status_code == 200
    return True


def _events(session, action: str) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == action))


def _sessions_of(session, user: User) -> list[LoginSession]:
    session.expire_all()
    return list(session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)
                                .order_by(LoginSession.id)))


def test_a_cookie_copied_before_sign_out_is_refused_afterwards(app, session):
    user = _person(session)
    web = _browser(app, user)
    thief = _copy_cookies(app, web.client)
    assert _signed_in(thief)  # the copy works while the session is open
    web.post("/logout")
    assert not _signed_in(web.client)
    assert not _signed_in(thief)
    (row,) = _sessions_of(session, user)
    assert row.revoked_at is not None


def test_the_database_holds_only_a_hash_of_the_session_id(app, session):
    user = _person(session)
    web = _browser(app, user)
    name = app.config["SESSION_COOKIE_NAME"]
    data = app.session_interface.get_signing_serializer(app).loads(
        web.client.get_cookie(name).value)
    raw = data["sid"]
    (row,) = _sessions_of(session, user)
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {row.token_hash, row.device}


def test_sign_out_everywhere_ends_every_session(app, session):
    user = _person(session)
    laptop, phone = _browser(app, user), _browser(app, user, ANDROID_CHROME)
    stolen = _copy_cookies(app, phone.client)
    token = create_api_token(session, user, "script")[1]
    session.commit()
    response = laptop.post("/account/sessions/end-all")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    for client in (laptop.client, phone.client, stolen):
        assert not _signed_in(client)
    assert all(s.revoked_at is not None for s in _sessions_of(session, user))
    assert _events(session, "session.end_all") == 1
    # API tokens are a separate credential and keep working until revoked.
    api = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    # Signing in again works as normal.
    assert _signed_in(_browser(app, user).client)


def test_password_change_ends_other_sessions_but_keeps_this_one(app, session):
    user = _person(session)
    here, there = _browser(app, user), _browser(app, user, ANDROID_CHROME)
    copy_of_here = _copy_cookies(app, here.client)
    new = "a brand new passphrase"
    response = here.post("/account/password", {"pw-current_password": PASSWORD,
                                                "pw-new_password": new,
                                                "pw-confirm_password": new})
    assert response.status_code == 302
    assert _signed_in(here.client)
    assert not _signed_in(there.client)
    # A copy taken before the change holds the old login id: refused as well.
    assert not _signed_in(copy_of_here)
    rows = _sessions_of(session, user)
    assert [r.revoked_at is None for r in rows] == [True, False]


def test_deactivation_by_an_admin_ends_every_session(app, session):
    learner = _person(session)
    admin = make_user(session, learner.centre, "admin")
    session.commit()
    learner_web = _browser(app, learner)
    stolen = _copy_cookies(app, learner_web.client)
    admin_web = _browser(app, admin)
    page = admin_web.client.get(f"/admin/people/{learner.id}")
    response = admin_web.client.post(f"/admin/people/{learner.id}", data={
        "csrf_token": csrf_from(page.get_data(True)), "full_name": learner.full_name,
        "email": learner.email, "roles": ["learner"], "assessor_status": "qualified"})
    assert response.status_code == 302, response.get_data(True)
    session.expire_all()
    assert session.get(User, learner.id).is_active is False
    assert not _signed_in(learner_web.client)
    assert not _signed_in(stolen)
    assert all(s.revoked_at is not None for s in _sessions_of(session, learner))
    assert _signed_in(admin_web.client)


def test_an_idle_session_ends_on_the_server(make_app, session):
    app = make_app(SESSION_LIFETIME_MINUTES=30)
    s = app.extensions["portfolio.db"].sessionmaker()
    user = make_user(s, make_centre(s))
    s.commit()
    web = _browser(app, user)
    (row,) = _sessions_of(s, user)

    # Seen 10 minutes ago: still good, and last_seen_at moves up (it is written at most once
    # a minute, so a second request straight after does not write again).
    ten_ago = utcnow() - timedelta(minutes=10)
    s.execute(update(LoginSession).where(LoginSession.id == row.id).values(last_seen_at=ten_ago))
    s.commit()
    assert _signed_in(web.client)
    seen = _sessions_of(s, user)[0].last_seen_at
    assert seen > ten_ago + timedelta(minutes=9)
    assert _signed_in(web.client)
    assert _sessions_of(s, user)[0].last_seen_at == seen

    # Idle for longer than the lifetime: refused, even though the signed cookie is still valid.
    s.execute(update(LoginSession).where(LoginSession.id == row.id)
              .values(last_seen_at=utcnow() - timedelta(minutes=31)))
    s.commit()
    assert not _signed_in(web.client)
    s.close()


def test_ending_another_session_from_the_account_page(app, session):
    user = _person(session)
    laptop, phone = _browser(app, user), _browser(app, user, ANDROID_CHROME)
    page = laptop.client.get("/account").get_data(True)
    assert "Chrome on Android" in page and "Firefox on Windows" in page
    assert "This browser" in page and "Sign out everywhere" in page
    assert "127.0.0.1" not in page  # addresses are neither shown nor stored
    laptop_row, phone_row = _sessions_of(session, user)
    assert f"/account/sessions/{phone_row.id}/end" in page
    assert f"/account/sessions/{laptop_row.id}/end" not in page  # no button for this one

    response = laptop.post(f"/account/sessions/{phone_row.id}/end")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    assert not _signed_in(phone.client)
    assert _signed_in(laptop.client)
    assert _events(session, "session.end") == 1
    # Ending it twice, or someone else's session, is "not found" and changes nothing.
    assert laptop.post(f"/account/sessions/{phone_row.id}/end").status_code == 404
    other = _person(session, email="someone.else@example.org")
    other_web = _browser(app, other)
    (other_row,) = _sessions_of(session, other)
    assert laptop.post(f"/account/sessions/{other_row.id}/end").status_code == 404
    assert _signed_in(other_web.client)
    assert _events(session, "session.end") == 1


def test_only_open_sessions_are_listed(app, session):
    user = _person(session)
    first = _browser(app, user)
    first.post("/logout")
    second = _browser(app, user, ANDROID_CHROME)
    page = second.client.get("/account").get_data(True)
    assert "Chrome on Android" in page
    assert "Firefox on Windows" not in page
