"""An admin invites people instead of typing their passwords (issue 17): the invitation email,
the person choosing their own password, "send again" and "cancel", the admin's to-do line and
the notification when it is accepted."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from portfolio.db import utcnow
from portfolio.models import Notification, PasswordReset, User
from tests.conftest import Browserless, csrf_from
from tests.factories import PASSWORD, make_world

LINK = re.compile(r"(/reset/pwr_[A-Za-z0-9_-]+)")
CHOSEN = "my very own passphrase"


def _links(app) -> list[str]:
    found = []
    for path in Path(app.config["OUTBOX_DIR"]).glob("*.eml"):
        match = LINK.search(path.read_text().replace("=\n", ""))
        if match:
            found.append(match.group(1))
    return found


def _admin(app, world) -> Browserless:
    web = Browserless(app.test_client())
    assert web.login(world.admin.email, PASSWORD).status_code == 302
    return web


def _add(web: Browserless, name: str, email: str):
    return web.post("/admin/people/new", {"full_name": name, "email": email, "roles": "learner",
                                          "assessor_status": "qualified"})


def _choose(client, link: str, password: str = CHOSEN):
    page = client.get(link)
    token = csrf_from((page if page.status_code == 200 else client.get("/forgot")).get_data(True))
    return client.post(link, data={"new_password": password, "confirm_password": password,
                                   "csrf_token": token})


def test_an_invited_person_chooses_their_own_password(app, session):
    world = make_world(session)
    admin = _admin(app, world)
    form = admin.client.get("/admin/people/new").get_data(as_text=True)
    assert 'type="password"' not in form  # the admin never types one
    added = _add(admin, "Nia Newcomer", "nia@example.org")
    assert added.status_code == 302
    people = admin.client.get("/admin/people").get_data(as_text=True)
    assert "is invited: we emailed nia@example.org" in people
    assert "Invitations not accepted" in people and "Nia Newcomer" in people
    (link,) = _links(app)
    # Nobody can sign in as Nia before she chooses her password.
    assert Browserless(app.test_client()).login("nia@example.org", PASSWORD).status_code == 401
    client = app.test_client()
    assert "Welcome, Nia Newcomer" in client.get(link).get_data(as_text=True)
    done = _choose(client, link)
    assert done.status_code == 302
    assert Browserless(app.test_client()).login("nia@example.org", CHOSEN).status_code == 302
    again = client.get(link)
    assert again.status_code == 410 and "accepted already" in again.get_data(as_text=True)
    # The admin who invited her is told, and her invitation leaves the list.
    session.expire_all()
    titles = list(session.scalars(select(Notification.title).where(
        Notification.recipient_id == world.admin.id)))
    assert "Nia Newcomer accepted your invitation and can now sign in" in titles
    assert "Invitations not accepted" not in admin.client.get("/admin/people").get_data(True)


def test_send_again_and_cancel(app, session):
    world = make_world(session)
    admin = _admin(app, world)
    _add(admin, "Sam Second", "sam@example.org")
    (first,) = _links(app)
    invitation = session.scalar(select(PasswordReset.id))
    assert admin.post(f"/admin/invitations/{invitation}/resend").status_code == 302
    (second,) = set(_links(app)) - {first}
    old = app.test_client().get(first)
    assert old.status_code == 410 and "cancelled or sent again" in old.get_data(as_text=True)
    newer = session.scalar(select(PasswordReset.id).where(PasswordReset.revoked_at.is_(None)))
    assert admin.post(f"/admin/invitations/{newer}/cancel").status_code == 302
    assert app.test_client().get(second).status_code == 410
    # A cancelled invitation cannot be cancelled or sent again by its old id.
    assert admin.post(f"/admin/invitations/{newer}/cancel").status_code == 404
    # Another centre's admin cannot touch this centre's invitations.
    far = Browserless(app.test_client())
    far.login(world.other_admin.email, PASSWORD)
    assert far.post(f"/admin/invitations/{invitation}/resend").status_code == 404


def test_an_expired_invitation_says_to_ask_the_admin(app, session):
    world = make_world(session)
    admin = _admin(app, world)
    _add(admin, "Eve Expired", "eve@example.org")
    (link,) = _links(app)
    session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    refused = app.test_client().get(link)
    assert refused.status_code == 410
    assert "Ask your centre admin to send it again" in refused.get_data(as_text=True)
    assert _choose(app.test_client(), link).status_code == 410
    people = admin.client.get("/admin/people").get_data(as_text=True)
    assert "Expired" in people  # still listed, to send again


def test_old_invitations_are_on_the_admins_to_do_list(app, session):
    world = make_world(session)
    admin = _admin(app, world)
    _add(admin, "Olu Old", "olu@example.org")
    assert "not accepted" not in admin.client.get("/").get_data(as_text=True)  # just sent
    session.execute(update(PasswordReset).values(created_at=utcnow() - timedelta(days=4)))
    session.commit()
    home = admin.client.get("/").get_data(as_text=True)
    assert "1 invitation not accepted" in home
    assert session.scalar(select(User.is_active).where(User.email == "olu@example.org"))


def test_the_edit_page_sends_a_link_instead_of_taking_a_password(app, session):
    """Someone who forgot their password asks the centre: the admin ticks "email them a link";
    the admin never types or sees a password, and the link works like a self-service reset."""
    from portfolio.models import AuditEvent

    world = make_world(session)
    session.commit()
    web = _admin(app, world)
    page = web.client.get(f"/admin/people/{world.learner.id}").get_data(True)
    assert 'type="password"' not in page
    assert "Email them a link to choose a new password" in page
    response = web.post(f"/admin/people/{world.learner.id}", {
        "full_name": world.learner.full_name, "roles": "learner",
        "assessor_status": "qualified", "is_active": "y", "send_reset": "y"})
    assert response.status_code == 302
    people = web.client.get("/admin/people").get_data(True)
    assert f"We emailed {world.learner.email} a link" in people
    [link] = _links(app)
    assert link not in people
    assert _choose(app.test_client(), link).status_code == 302
    assert Browserless(app.test_client()).login(world.learner.email, CHOSEN).status_code == 302
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "user.reset_sent")
                          ).actor_id == world.admin.id
    # Saving without the box ticked sends nothing more.
    web.post(f"/admin/people/{world.learner.id}", {
        "full_name": world.learner.full_name, "roles": "learner",
        "assessor_status": "qualified", "is_active": "y"})
    assert len(_links(app)) == 1


def test_no_link_for_an_account_made_inactive(app, session):
    world = make_world(session)
    session.commit()
    web = _admin(app, world)
    response = web.post(f"/admin/people/{world.learner.id}", {
        "full_name": world.learner.full_name, "roles": "learner",
        "assessor_status": "qualified", "send_reset": "y"})
    assert response.status_code == 422
    assert "not active" in response.get_data(True)
    assert _links(app) == []
    session.expire_all()
    assert session.get(User, world.learner.id).is_active  # nothing was saved


def test_signing_in_to_an_invited_account_costs_a_full_hash(app, session, monkeypatch):
    """Before the person chooses a password, a sign-in attempt is refused after the same Argon2
    work as any other, so timing does not tell which addresses were invited."""
    from portfolio.auth import services

    world = make_world(session)
    session.commit()
    web = _admin(app, world)
    assert _add(web, "Nia Newcomer", "nia@example.org").status_code == 302
    used = []
    real = services._dummy_hash
    monkeypatch.setattr(services, "_dummy_hash", lambda: used.append(1) or real())
    response = Browserless(app.test_client()).login("nia@example.org", "!no-password-yet")
    assert response.status_code == 401
    assert used == [1]
