"""Access cases for an admin's invitations: only an admin of the invited person's centre may
send one again or cancel it (another centre's admin gets the 404 of an unknown id)."""

from __future__ import annotations


def setup(app, session, world) -> None:
    from portfolio.auth.resets import invite, pending_invitations
    from tests.factories import make_user

    centre = world.admin.centre
    for name in ("Ina Invited", "Cal Cancelled"):
        person = make_user(session, centre, "learner", name=name)
        invite(session, person, actor=world.admin, days=7)
    session.flush()
    pending = {i.user.full_name: i.id for i in pending_invitations(session, centre.id)}
    world.invitation_to_resend = pending["Ina Invited"]
    world.invitation_to_cancel = pending["Cal Cancelled"]


def cases(m) -> list:
    return [
        m.Case("admin.resend_invitation", "POST",
               lambda w, t: f"/admin/invitations/{w.invitation_to_resend}/resend",
               m.admins_only(m.REDIRECT, other_admin=m.MISSING)),
        m.Case("admin.cancel_invitation", "POST",
               lambda w, t: f"/admin/invitations/{w.invitation_to_cancel}/cancel",
               m.admins_only(m.REDIRECT, other_admin=m.MISSING)),
    ]
