"""Accounts: passwords, login throttling, roles and personal API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.auth.sessions import end_all_sessions
from portfolio.auth.throttle import Limits, reserve_attempt, settle_attempt, wait_phrase
from portfolio.db import utcnow
from portfolio.errors import NotFound, PermissionDenied, ValidationFailed
from portfolio.models import ApiToken, Centre, LoginAttempt, Role, User, UserRole
from portfolio.models.users import ASSESSOR_STATUSES
from portfolio.paging import contains
from portfolio.permissions import can_manage_token, can_manage_users

_hasher = PasswordHasher()
_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash verified against when the email is unknown, so a wrong email costs as long as a
    wrong password. Made on first use, not at import (argon2 is slow on purpose, and the CLI
    should not pay for it)."""
    if not _DUMMY:
        _DUMMY.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "pat_"  # noqa: S105 - a label, not a secret
# Stored for a person added with no password (they choose theirs through an invitation): not
# an Argon2 hash, so no password matches it, and adding many people costs no hashing.
NO_PASSWORD_YET = "!no-password-yet"  # noqa: S105 - not a password


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def normalise_email(email: str) -> str:
    """Lower-case and trim an email address, checking its shape."""
    cleaned = (email or "").strip().lower()
    if not EMAIL_RE.match(cleaned) or len(cleaned) > 254:
        raise ValidationFailed("Enter an email address like name@example.org.", field="email")
    return cleaned


def check_password_strength(password: str, min_length: int) -> None:
    """Refuse passwords that are too short.

    :raises ValidationFailed: naming the field.
    """
    if len(password) < min_length:
        raise ValidationFailed(
            f"Use at least {min_length} characters for the password.", field="password"
        )


def _signin_refusal(minutes: int) -> str:
    return (f"Too many failed sign-in attempts. Try again in {wait_phrase(minutes)}, "
            "or ask your centre admin to reset your password.")


def _record_attempt(session: Session, email: str, client: str, ok: bool) -> None:
    """Keep a short record of each password check (who, from where, whether it matched)."""
    now = utcnow()
    session.add(LoginAttempt(email=email[:254], client=client[:64], attempted_at=now,
                             succeeded=ok))
    # Attempts older than a day have no further use; keep the table small.
    session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < now - timedelta(days=1)))


def check_password(session: Session, user: User, password: str, *, client: str,
                   max_failures: int, lockout_minutes: int,
                   refusal: Callable[[int], str], record_as: str) -> bool:
    """Check a signed-in person's password through the shared, atomic throttle.

    Signing and changing a password use this, so they count with sign-in.

    :raises Throttled: too many wrong passwords recently for this account or address.
    """
    reservation = reserve_attempt(session, email=user.email, client=client,
                                  limits=Limits(max_failures, lockout_minutes), message=refusal)
    ok = verify_password(user, password or "")
    settle_attempt(reservation, succeeded=ok)
    _record_attempt(session, user.email, record_as, ok)
    session.flush()
    return ok


def authenticate(
    session: Session,
    email: str,
    password: str,
    *,
    client: str,
    max_failures: int,
    lockout_minutes: int,
) -> User:
    """Return the user for these credentials, throttling repeated failures.

    The attempt is counted atomically before the password is checked, so concurrent guesses
    cannot pass the limit.

    :raises Throttled: too many recent failures for this account or this address.
    :raises ValidationFailed: wrong email or password (one message for both).
    """
    email = (email or "").strip().lower()[:254]
    reservation = reserve_attempt(session, email=email, client=client,
                                  limits=Limits(max_failures, lockout_minutes),
                                  message=_signin_refusal)
    user = session.scalar(select(User).where(User.email == email))
    ok = False
    try:
        # An unknown email, or a person who has not chosen a password yet, costs the same hash
        # as a real check: the time taken says nothing about which accounts exist.
        usable = user is not None and user.password_hash != NO_PASSWORD_YET
        ok = _hasher.verify(user.password_hash if usable and user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and usable and user is not None and user.is_active
    settle_attempt(reservation, succeeded=ok)
    _record_attempt(session, email, client, ok)
    if not ok or user is None:
        session.flush()
        raise ValidationFailed("That email and password do not match an active account.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    record_event(session, action="login", subject_type="user", subject_id=user.id, actor=user)
    return user


def verify_password(user: User, password: str) -> bool:
    """True when the password is the user's current one (unthrottled: use check_password)."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def get_or_create_centre(session: Session, name: str) -> Centre:
    """Return the centre with this name, creating it if new."""
    centre = session.scalar(select(Centre).where(Centre.name == name))
    if centre is None:
        centre = Centre(name=name)
        session.add(centre)
        session.flush()
    return centre


def _clean_roles(roles: Iterable[str]) -> set[Role]:
    try:
        cleaned = {Role(r) for r in roles}
    except ValueError as exc:
        raise ValidationFailed(f"Unknown role: {exc}", field="roles") from exc
    if not cleaned:
        raise ValidationFailed("Give the person at least one role.", field="roles")
    return cleaned


def _check_assessor_status(roles: set[Role], assessor_status: str | None) -> str | None:
    if Role.ASSESSOR not in roles:
        return None
    status = assessor_status or "qualified"
    if status not in ASSESSOR_STATUSES:
        raise ValidationFailed("Assessor status is trainee or qualified.", field="assessor_status")
    return status


def create_user(
    session: Session,
    *,
    centre: Centre,
    email: str,
    full_name: str,
    password: str | None,
    roles: Iterable[str],
    assessor_status: str | None = None,
    min_password_length: int = 12,
    actor: User | None = None,
) -> User:
    """Create a person with roles in a centre; with `password` None they cannot sign in until
    they choose one (through an invitation).

    :raises PermissionDenied: the actor does not administer the centre.
    :raises ValidationFailed: bad email, name, password or roles; email taken.
    """
    if actor is not None and not can_manage_users(actor, centre.id):
        raise PermissionDenied("Only an admin of this centre can add people to it.")
    email = normalise_email(email)
    full_name = " ".join((full_name or "").split())
    if not full_name or len(full_name) > 200:
        raise ValidationFailed("Enter the person's full name.", field="full_name")
    if password is not None:
        check_password_strength(password, min_password_length)
    role_set = _clean_roles(roles)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ValidationFailed("Someone already has that email address.", field="email")
    user = User(
        centre_id=centre.id,
        email=email,
        full_name=full_name,
        password_hash=NO_PASSWORD_YET if password is None else hash_password(password),
        assessor_status=_check_assessor_status(role_set, assessor_status),
        role_rows=[UserRole(role=r.value) for r in sorted(role_set)],
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        action="user.create",
        subject_type="user",
        subject_id=user.id,
        actor=actor,
        actor_role=Role.ADMIN.value if actor else None,
        centre_id=centre.id,
        detail={"roles": sorted(r.value for r in role_set)},
    )
    return user


def update_user(
    session: Session,
    user: User,
    *,
    actor: User,
    full_name: str,
    roles: Iterable[str],
    assessor_status: str | None,
    is_active: bool,
) -> User:
    """Change a person's name, roles, assessor status or active flag.

    :raises PermissionDenied: the actor does not administer the person's centre.
    """
    if not can_manage_users(actor, user.centre_id):
        raise PermissionDenied("Only an admin of this person's centre can change them.")
    role_set = _clean_roles(roles)
    full_name = " ".join((full_name or "").split())
    if not full_name:
        raise ValidationFailed("Enter the person's full name.", field="full_name")
    if user.id == actor.id and (Role.ADMIN not in role_set or not is_active):
        raise ValidationFailed(
            "You cannot remove your own admin role or deactivate yourself; ask another admin.",
            field="roles",
        )
    before = {"roles": sorted(r.value for r in user.roles), "active": user.is_active}
    user.full_name = full_name
    user.assessor_status = _check_assessor_status(role_set, assessor_status)
    current = {row.role for row in user.role_rows}
    wanted = {r.value for r in role_set}
    user.role_rows = [row for row in user.role_rows if row.role in wanted] + [
        UserRole(role=r) for r in sorted(wanted - current)
    ]
    if user.is_active and not is_active:
        # Deactivation ends every open session and token at once.
        user.login_id = secrets.token_urlsafe(32)
        end_all_sessions(session, user, actor=actor, audit=False)
        for token in session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ):
            token.revoked_at = utcnow()
    user.is_active = is_active
    session.flush()
    record_event(
        session,
        action="user.update",
        subject_type="user",
        subject_id=user.id,
        actor=actor,
        actor_role=Role.ADMIN.value,
        detail={"before": before, "after": {"roles": sorted(wanted), "active": is_active}},
    )
    return user


def set_password(session: Session, user: User, password: str, *, min_length: int,
                 keep_session_id: int | None = None) -> None:
    """Replace a person's password and end their other sessions (all but keep_session_id)."""
    check_password_strength(password, min_length)
    user.password_hash = hash_password(password)
    user.login_id = secrets.token_urlsafe(32)
    end_all_sessions(session, user, keep_id=keep_session_id, audit=False)
    record_event(session, action="user.password", subject_type="user", subject_id=user.id,
                 actor=user)


def _token_hash(raw: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a personal access token; return it with the raw value, shown only once."""
    name = " ".join((name or "").split())[:100]
    if not name:
        raise ValidationFailed("Give the token a name, such as the tool that will use it.",
                               field="name")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, prefix=raw[:10], token_hash=_token_hash(raw))
    session.add(token)
    session.flush()
    record_event(session, action="token.create", subject_type="api_token", subject_id=token.id,
                 actor=user, detail={"name": name})
    return token, raw


def revoke_api_token(session: Session, token: ApiToken, *, actor: User) -> None:
    """Revoke a token so it no longer authenticates."""
    if not can_manage_token(actor, token.user_id):
        raise PermissionDenied("You can revoke only your own tokens.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(session, action="token.revoke", subject_type="api_token",
                     subject_id=token.id, actor=actor)


def user_for_token(session: Session, raw: str) -> User | None:
    """Return the active owner of a valid, unrevoked token, noting its use."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(raw)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    now = utcnow()
    # Note use at most once a minute, so a busy script does not write on every call.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token.user


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    """Return the user's tokens, newest first."""
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


def users_query(centre_id: int, search: str = "") -> Any:
    """The centre's people by name, those whose name or email contains `search` if given."""
    query = select(User).where(User.centre_id == centre_id)
    like = contains(search)
    if like:
        query = query.where(func.lower(User.full_name).like(like, escape="\\")
                            | func.lower(User.email).like(like, escape="\\"))
    return query.order_by(User.full_name, User.id)


def get_centre_person(session: Session, user_id: int, user: User) -> User:
    """A person of the user's own centre; NotFound for anyone else (other centres' ids look
    like missing ones)."""
    person = session.get(User, user_id)
    if person is None or person.centre_id != user.centre_id:
        raise NotFound("No such person in your centre.")
    return person


def list_users(session: Session, centre_id: int) -> list[User]:
    """Return the centre's people, by name."""
    return list(
        session.scalars(select(User).where(User.centre_id == centre_id).order_by(User.full_name))
    )
