"""Password links: self-service reset, and an admin's invitation to choose a first password.

- `request_reset` answers the same whatever the address: it says nothing about whether an
  account exists. For an active account it makes a link (256 random bits; only its SHA-256 is
  stored) that expires after RESET_LINK_MINUTES, revokes any earlier link, and returns the
  message to email. Requests are limited per address asked about and per client address.
- `check_link` names what is wrong with a link: unknown (or forged), used, replaced by a newer
  one, or expired; each gets its own plain message.
- `reset_password` sets the new password, marks the link used and ends every session of the
  person (and so every copied cookie); it is audited without the address or the link.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, contains_eager, joinedload

from portfolio.audit import record_event
from portfolio.auth.services import normalise_email, set_password
from portfolio.auth.throttle import count_hits, counter_key
from portfolio.db import utcnow
from portfolio.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    Throttled,
)
from portfolio.models import PasswordReset, User
from portfolio.notify import Message
from portfolio.permissions import can_manage_users

LINK_PREFIX = "pwr_"


class LinkRefused(DomainError):
    """A reset link that cannot be used (410), with the reason in plain words."""

    status = 410
    title = "This link cannot be used"


@dataclass(frozen=True)
class ResetRequest:
    """What to email, when there is an account to email: the person and the raw link token."""

    user: User
    token: str


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _count(session: Session, scope: str, value: str, limit: int, window: timedelta) -> bool:
    """Count one request for this scope and value; False when over the limit in the window."""
    [(count, _started)] = count_hits(session, [counter_key(scope, value)], window)
    return count <= limit


def request_reset(session: Session, *, email: str, client: str, minutes: int,
                  per_address: int, per_client: int) -> ResetRequest | None:
    """Make a reset link for an active account with this email, or None (no account, an
    inactive one, or over a limit: the caller answers the same in every case).

    :raises Throttled: this client asked too often (a limit on the asker, not the account).
    """
    window = timedelta(hours=1)
    if not _count(session, "reset-client", client or "unknown", per_client, window):
        raise Throttled("Too many requests from here. Try again in an hour.")
    cleaned = normalise_email(email)
    if not cleaned or not _count(session, "reset-account", cleaned, per_address, window):
        return None
    user = session.scalar(select(User).where(User.email == cleaned))
    if user is None or not user.is_active:
        return None
    raw = _new_link(session, user, purpose="reset", lifetime=timedelta(minutes=minutes))
    record_event(session, action="user.reset_requested", subject_type="user",
                 subject_id=user.id, actor=user)
    session.flush()
    return ResetRequest(user, raw)


def _new_link(session: Session, user: User, *, purpose: str, lifetime: timedelta,
              created_by: User | None = None) -> str:
    """Revoke the person's open links of this purpose and make a new one; return it raw."""
    now = utcnow()
    session.execute(update(PasswordReset)
                    .where(PasswordReset.user_id == user.id, PasswordReset.purpose == purpose,
                           PasswordReset.used_at.is_(None), PasswordReset.revoked_at.is_(None))
                    .values(revoked_at=now))
    raw = LINK_PREFIX + secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=_hash(raw), created_at=now,
                              expires_at=now + lifetime, purpose=purpose,
                              created_by_id=created_by.id if created_by else None))
    return raw


def _sent_by_admin(session: Session, user: User, *, actor: User, purpose: str,
                   lifetime: timedelta, action: str) -> str:
    """A link an admin sends the person (the admin never sees or sets the password); earlier
    links of the same purpose stop working. Returns the raw link token.

    :raises PermissionDenied: the actor is not an admin of the person's centre.
    :raises InvalidTransition: the account is not active.
    """
    if not can_manage_users(actor, user.centre_id):
        raise PermissionDenied("Only an admin of this person's centre can send them a link.")
    if not user.is_active:
        raise InvalidTransition("This person's account is not active: activate it first.")
    raw = _new_link(session, user, purpose=purpose, lifetime=lifetime, created_by=actor)
    record_event(session, action=action, subject_type="user", subject_id=user.id,
                 actor=actor, actor_role="admin")
    session.flush()
    return raw


def invite(session: Session, user: User, *, actor: User, days: int) -> str:
    """Make (or make again) the person's invitation: a link to choose their first password,
    valid for `days` (see `_sent_by_admin`)."""
    return _sent_by_admin(session, user, actor=actor, purpose="invite",
                          lifetime=timedelta(days=days), action="user.invited")


def send_reset(session: Session, user: User, *, actor: User, minutes: int) -> str:
    """A link to choose a new password, for a person who forgot theirs and asked the centre
    (see `_sent_by_admin`)."""
    return _sent_by_admin(session, user, actor=actor, purpose="reset",
                          lifetime=timedelta(minutes=minutes), action="user.reset_sent")


def invitation_email(user: User, link: str, *, inviter: str, days: int) -> Message:
    """The email that invites a person to choose their first password through `link`."""
    return Message(
        (user.email,), f"You are invited to {user.centre.name}'s Evidence Builder",
        f"Hello {user.full_name},\n\n{inviter} at {user.centre.name} has made "
        f"you an account on the Evidence Builder, where portfolios of evidence are built, "
        f"assessed and signed off.\n\nOpen this link to choose your password; it works once, "
        f"for {days} days:\n\n{link}\n\nThen sign in with {user.email}.\n")


def pending_invitations(session: Session, centre_id: int) -> list[PasswordReset]:
    """The centre's invitations not accepted yet (expired ones too), oldest first."""
    return list(session.scalars(
        select(PasswordReset).join(User, User.id == PasswordReset.user_id)
        .where(User.centre_id == centre_id, PasswordReset.purpose == "invite",
               PasswordReset.used_at.is_(None), PasswordReset.revoked_at.is_(None))
        .options(contains_eager(PasswordReset.user), joinedload(PasswordReset.created_by))
        .order_by(PasswordReset.created_at, PasswordReset.id)))


def get_invitation(session: Session, invitation_id: int, actor: User) -> PasswordReset:
    """An open invitation of the actor's centre (404 for anything else)."""
    found = session.get(PasswordReset, invitation_id)
    if (found is None or found.purpose != "invite" or found.used_at is not None
            or found.revoked_at is not None
            or not can_manage_users(actor, found.user.centre_id)):
        raise NotFound("No such invitation, or it was accepted or cancelled already.")
    return found


def cancel_invitation(session: Session, invitation: PasswordReset, *, actor: User) -> None:
    """Stop an invitation's link from working (the account stays; it can be invited again)."""
    invitation.revoked_at = utcnow()
    record_event(session, action="user.invite_cancelled", subject_type="user",
                 subject_id=invitation.user_id, actor=actor, actor_role="admin")


def check_link(session: Session, raw: str, now: datetime | None = None) -> PasswordReset:
    """The reset a link belongs to, if it can still be used.

    :raises LinkRefused: unknown or forged, used, replaced, or expired.
    """
    now = now or utcnow()
    reset = None
    if raw.startswith(LINK_PREFIX) and len(raw) < 100:
        reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _hash(raw)))
    if reset is None:
        raise LinkRefused("This link is not one we sent. Ask for a new one on the sign-in page.")
    invited = reset.purpose == "invite"
    if reset.used_at is not None:
        raise LinkRefused("This invitation has been accepted already: sign in with the password "
                          "you chose." if invited else
                          "This link has been used already. If you did not use it, ask for a "
                          "new one and tell your centre.")
    if reset.revoked_at is not None:
        raise LinkRefused("This invitation was cancelled or sent again: use the newest email, "
                          "or ask your centre admin." if invited else
                          "A newer link was sent after this one: use the newest email, or ask "
                          "for a new link.")
    if reset.expires_at <= now or not reset.user.is_active:
        raise LinkRefused("This invitation has expired. Ask your centre admin to send it "
                          "again." if invited else
                          "This link has expired. Ask for a new one on the sign-in page.")
    return reset


def reset_password(session: Session, raw: str, password: str, *, min_length: int) -> User:
    """Use a link: set the password, end every session, and make the link used.

    :raises LinkRefused: the link cannot be used (nothing is changed).
    :raises ValidationFailed: the password is too short (the link stays usable).
    """
    reset = check_link(session, raw)
    now = utcnow()
    # Claim the link first: of two submissions at once, only one changes the password.
    claimed = session.execute(
        update(PasswordReset).where(PasswordReset.id == reset.id,
                                    PasswordReset.used_at.is_(None))
        .values(used_at=now), execution_options={"synchronize_session": False}).rowcount
    if claimed != 1:
        raise LinkRefused("This link has been used already.")
    user = reset.user
    set_password(session, user, password, min_length=min_length)
    if reset.purpose == "invite":
        record_event(session, action="user.invite_accepted", subject_type="user",
                     subject_id=user.id, actor=user,
                     detail={"invited_by": reset.created_by_id})
    else:
        record_event(session, action="user.reset_used", subject_type="user",
                     subject_id=user.id, actor=user)
    return user


__all__ = ["LinkRefused", "ResetRequest", "Throttled", "cancel_invitation", "check_link",
           "get_invitation", "invitation_email", "invite", "pending_invitations",
           "request_reset", "reset_password"]
