"""Server-side sign-in sessions: started at sign-in, checked on every request, ended on demand.

The signed cookie holds a random session id; the database holds only its SHA-256, so a copy of
the database cannot be turned into a working cookie. Ending a session (sign-out, "sign out
everywhere", a password change, deactivation) marks the row revoked, and a cookie copied
before then is refused afterwards. API tokens are separate and unaffected.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.auth.throttle import own_transaction, side_engine
from portfolio.db import utcnow
from portfolio.errors import NotFound
from portfolio.models import LoginSession, User

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often

_BROWSERS = (  # order matters: Edge and Opera also say "Chrome", Chrome also says "Safari"
    ("Edg", "Edge"), ("OPR", "Opera"), ("SamsungBrowser", "Samsung Internet"),
    ("Firefox", "Firefox"), ("FxiOS", "Firefox"), ("CriOS", "Chrome"), ("Chrome", "Chrome"),
    ("Chromium", "Chromium"), ("Safari", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("CrOS", "ChromeOS"),
    ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"),
)


def describe_device(user_agent: str | None) -> str:
    """Return a coarse description such as "Chrome on Android" (no versions, no identifiers)."""
    agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser is None and re.search(r"curl|python|wget|httpx|Werkzeug", agent, re.I):
        browser = "A script"
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "Unknown browser")


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start_session(session: Session, user: User, *, user_agent: str | None) -> str:
    """Open a session for a person who just signed in; return the raw id for the cookie."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(LoginSession(user_id=user.id, token_hash=_hash(raw), created_at=now,
                             last_seen_at=now, device=describe_device(user_agent)))
    session.flush()
    return raw


@dataclass(frozen=True)
class CurrentSession:
    """The person and the session a request's cookie belongs to."""

    user: User
    session_id: int


def load_session(session: Session, raw: str | None, *, login_id: str,
                 idle_minutes: int) -> CurrentSession | None:
    """Return the live session for a cookie, or None when it was ended, idled out or is unknown.

    One indexed lookup; last_seen_at is written at most once a minute, in its own transaction
    so that it is kept even when the request commits nothing.
    """
    if not raw:
        return None
    row = session.execute(
        select(LoginSession, User).join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _hash(raw))
    ).one_or_none()
    if row is None:
        return None
    login_session, user = row
    now = utcnow()
    if (login_session.revoked_at is not None or not user.is_active
            or user.login_id != login_id
            or now - login_session.last_seen_at > timedelta(minutes=idle_minutes)):
        return None
    if now - login_session.last_seen_at >= TOUCH_EVERY:
        with own_transaction(session, side_engine(session)) as conn:
            conn.execute(update(LoginSession).where(LoginSession.id == login_session.id)
                         .values(last_seen_at=now))
        login_session.last_seen_at = now
    return CurrentSession(user=user, session_id=login_session.id)


def list_active_sessions(session: Session, user: User, *, idle_minutes: int
                         ) -> list[LoginSession]:
    """Return the person's sessions that still work, most recently used first."""
    since = utcnow() - timedelta(minutes=idle_minutes)
    return list(session.scalars(
        select(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None),
               LoginSession.last_seen_at >= since)
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())))


def _revoke(session: Session, user: User, *, keep_id: int | None = None,
            only_id: int | None = None) -> int:
    query = update(LoginSession).where(LoginSession.user_id == user.id,
                                       LoginSession.revoked_at.is_(None))
    if keep_id is not None:
        query = query.where(LoginSession.id != keep_id)
    if only_id is not None:
        query = query.where(LoginSession.id == only_id)
    result = session.execute(query.values(revoked_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def sign_out(session: Session, session_id: int | None) -> None:
    """End the session a browser is signing out of."""
    if session_id is not None:
        session.execute(update(LoginSession).where(LoginSession.id == session_id,
                                                   LoginSession.revoked_at.is_(None))
                        .values(revoked_at=utcnow()))


def end_session(session: Session, user: User, session_id: int, *, current_id: int | None
                ) -> LoginSession:
    """End one of the person's own sessions (another device, usually).

    :raises NotFound: not one of this person's sessions that is still open.
    """
    target = session.get(LoginSession, session_id)
    if target is None or target.user_id != user.id or target.revoked_at is not None:
        raise NotFound("No such open session.")
    _revoke(session, user, only_id=session_id)
    record_event(session, action="session.end", subject_type="user", subject_id=user.id,
                 actor=user, detail={"session_id": session_id, "device": target.device,
                                     "own": session_id == current_id})
    return target


def end_all_sessions(session: Session, user: User, *, actor: User | None = None,
                     keep_id: int | None = None, audit: bool = True) -> int:
    """End every session of a person (but keep_id); return how many were open."""
    ended = _revoke(session, user, keep_id=keep_id)
    if audit:
        record_event(session, action="session.end_all", subject_type="user",
                     subject_id=user.id, actor=actor or user,
                     detail={"ended": ended, "kept_current": keep_id is not None})
    return ended

