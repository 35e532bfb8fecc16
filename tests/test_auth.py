"""Sign-in, throttling, CSRF, sessions, passwords and API tokens."""

from __future__ import annotations

from sqlalchemy import func, select

from portfolio.auth.services import create_api_token
from portfolio.models import ApiToken, AuditEvent, LoginAttempt
from tests.conftest import csrf_from
from tests.factories import PASSWORD, make_centre, make_user


def _person(session, *roles, **kw):
    user = make_user(session, make_centre(session), *roles or ("learner",), **kw)
    session.commit()
    return user


def test_login_success_sets_hardened_cookie_and_audits(app, session, web):
    user = _person(session)
    response = web.login(user.email.upper(), PASSWORD)  # emails match case-insensitively
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "login")) == 1


def test_secure_cookie_flag_in_production(make_app, session):
    app = make_app(SESSION_COOKIE_SECURE=True)
    s = app.extensions["portfolio.db"].sessionmaker()
    user = make_user(s, make_centre(s))
    s.commit()
    client = app.test_client()
    page = client.get("/login")
    assert "Secure" in page.headers["Set-Cookie"]
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "csrf_token": csrf_from(page.get_data(True))})
    assert "Secure" in response.headers["Set-Cookie"]
    s.close()


def test_wrong_password_is_refused_with_one_message(app, session, web):
    user = _person(session)
    for email, password in ((user.email, "not the password"), ("ghost@example.org", PASSWORD)):
        response = web.login(email, password)
        assert response.status_code == 401
        assert "do not match an active account" in response.get_data(True)
    assert web.client.get("/").status_code == 302


def test_login_is_throttled_after_repeated_failures(make_app, session):
    app = make_app(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_MINUTES=15)
    s = app.extensions["portfolio.db"].sessionmaker()
    user = make_user(s, make_centre(s))
    s.commit()
    from tests.conftest import Browserless

    web = Browserless(app.test_client())
    for _ in range(3):
        assert web.login(user.email, "wrong guess").status_code == 401
    # Even the right password is refused while the account is locked out.
    response = web.login(user.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(True)
    assert s.scalar(select(func.count()).select_from(LoginAttempt)) == 3
    s.close()


def test_inactive_account_cannot_sign_in(app, session, web):
    user = _person(session)
    user.is_active = False
    session.commit()
    assert web.login(user.email, PASSWORD).status_code == 401


def test_post_without_csrf_token_is_rejected_and_changes_nothing(app, session, web):
    user = _person(session)
    web.login(user.email, PASSWORD)
    response = web.client.post("/account/tokens", data={"tok-name": "sneaky"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(True)
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 0
    forged = web.client.post("/account/tokens", data={"tok-name": "x", "csrf_token": "forged"})
    assert forged.status_code == 400


def test_login_form_needs_csrf_too(app, session, client):
    user = _person(session)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400


def test_open_redirect_is_refused(app, session, client):
    user = _person(session)
    page = client.get("/login?next=https://evil.example/")
    response = client.post("/login?next=https://evil.example/", data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page.get_data(True))})
    assert response.headers["Location"] == "/"


def test_login_redirects_back_to_next(app, session, client):
    user = _person(session)
    first = client.get("/units")
    assert first.status_code == 302 and "/login?next=" in first.headers["Location"]
    page = client.get("/login?next=/units")
    response = client.post("/login?next=/units", data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page.get_data(True))})
    assert response.headers["Location"] == "/units"


def test_change_password_ends_other_sessions(app, session, web):
    user = _person(session)
    other_device = type(web)(app.test_client())
    web.login(user.email, PASSWORD)
    other_device.login(user.email, PASSWORD)
    new = "an entirely new passphrase"
    wrong = web.post("/account/password", {"pw-current_password": "nope",
                                            "pw-new_password": new, "pw-confirm_password": new})
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(True)
    short = web.post("/account/password", {"pw-current_password": PASSWORD,
                                            "pw-new_password": "short",
                                            "pw-confirm_password": "short"})
    assert short.status_code == 422 and "at least 12 characters" in short.get_data(True)
    ok = web.post("/account/password", {"pw-current_password": PASSWORD,
                                         "pw-new_password": new, "pw-confirm_password": new})
    assert ok.status_code == 302
    assert web.client.get("/").status_code == 200  # this session continues
    assert other_device.client.get("/").status_code == 302  # the other one is signed out
    assert type(web)(app.test_client()).login(user.email, new).status_code == 302


def test_token_created_in_page_is_shown_once_and_works(app, session, web):
    user = _person(session)
    web.login(user.email, PASSWORD)
    response = web.post("/account/tokens", {"tok-name": "my script"})
    assert response.status_code == 201
    html = response.get_data(True)
    raw = html.split('id="new-token">')[1].split("<")[0]
    assert raw.startswith("pat_")
    assert raw not in web.client.get("/account").get_data(True)
    stored = session.scalar(select(ApiToken))
    assert stored.token_hash != raw and raw not in stored.token_hash  # only the hash is kept
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.get_json()["email"] == user.email


def test_revoked_token_stops_working(app, session, web):
    user = _person(session)
    token, raw = create_api_token(session, user, "tool")
    session.commit()
    headers = {"Authorization": f"Bearer {raw}"}
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 200
    web.login(user.email, PASSWORD)
    assert web.post(f"/account/tokens/{token.id}/revoke").status_code == 302
    response = app.test_client().get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_deactivating_a_user_revokes_tokens_and_sessions(app, session, web):
    centre = make_centre(session)
    admin = make_user(session, centre, "admin")
    learner = make_user(session, centre, "learner")
    _token, raw = create_api_token(session, learner, "tool")
    session.commit()
    learner_web = type(web)(app.test_client())
    learner_web.login(learner.email, PASSWORD)
    web.login(admin.email, PASSWORD)
    response = web.post(f"/admin/people/{learner.id}", {
        "full_name": learner.full_name, "roles": ["learner"], "assessor_status": "qualified"})
    assert response.status_code == 302  # is_active unticked
    assert learner_web.client.get("/").status_code == 302
    assert app.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_admin_cannot_remove_own_admin_role(app, session, web):
    admin = _person(session, "admin")
    web.login(admin.email, PASSWORD)
    response = web.post(f"/admin/people/{admin.id}", {
        "full_name": admin.full_name, "roles": ["learner"], "assessor_status": "qualified",
        "is_active": "y"})
    assert response.status_code == 422
    assert "cannot remove your own admin role" in response.get_data(True)
    session.refresh(admin)
    assert {r.value for r in admin.roles} == {"admin"}
