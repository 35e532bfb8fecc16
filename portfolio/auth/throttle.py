"""Atomic throttles for every password check: sign-in, signing and password change.

Each check first *reserves* an attempt: one atomic upsert per counter (the account, and the
client's address) that adds one and returns the new count, committed at once on its own
connection. Concurrent requests therefore each see a distinct count, and no more than the limit
ever reach the (slow) password hash. A right password clears the account's count and gives the
address back its reservation; a wrong one leaves both counted.

Counters are keyed by a SHA-256 of the scope and value, so they hold neither email addresses
nor IP addresses. With REDIS_URL set they live in Redis (the `limits` library's storage: an
atomic INCRBY that starts the window's expiry with the first count), so every machine shares
them and an anonymous hit writes nothing to the database; without it, or while Redis cannot be
reached, in the `auth_throttles` table.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from flask import current_app, has_app_context
from limits.storage import RedisStorage, storage_from_string
from sqlalchemy import case, create_engine, delete, event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from portfolio.db import _enable_sqlite_foreign_keys as sqlite_pragmas
from portfolio.db import utcnow
from portfolio.errors import Throttled
from portfolio.models.users import AuthThrottle

ADDRESS_FACTOR = 4  # an address may fail four times as often as one account
log = logging.getLogger(__name__)


class LockedOut(Throttled):
    """Too many password checks: try again after `minutes` (sent as Retry-After)."""

    def __init__(self, message: str, *, minutes: int) -> None:
        super().__init__(message)
        self.minutes = minutes


@dataclass(frozen=True)
class Limits:
    """How many failures an account may have within the window (an address: four times)."""

    max_failures: int
    lockout_minutes: int


@dataclass(frozen=True)
class Reservation:
    """Attempts reserved for one password check, to be settled once its outcome is known."""

    session: Session
    engine: Engine
    account_key: str
    address_key: str


def counter_key(scope: str, value: str) -> str:
    return hashlib.sha256(f"{scope}:{value}".encode()).hexdigest()


def account_key(email: str) -> str:
    return counter_key("account", (email or "").strip().lower())


def address_key(client: str) -> str:
    return counter_key("address", client or "unknown")


# Counters go through their own unpooled engine: a request that already holds a pooled
# connection must never wait for a second one from the same pool (20 such requests at once
# would each hold one and wait for ever).
_COUNTER_ENGINES: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()
_COUNTER_ENGINES_LOCK = threading.Lock()


def side_engine(session: Session) -> Engine:
    bind = session.get_bind()
    main: Engine = getattr(bind, "engine", bind)  # type: ignore[assignment]
    with _COUNTER_ENGINES_LOCK:
        counter = _COUNTER_ENGINES.get(main)
        if counter is None:
            counter = create_engine(main.url, poolclass=NullPool)
            if counter.dialect.name == "sqlite":
                event.listen(counter, "connect", sqlite_pragmas)
            _COUNTER_ENGINES[main] = counter
    return counter


def _holds_sqlite_write_lock(session: Session, engine: Engine) -> bool:
    """True when the caller's SQLite transaction has already written (and so holds the lock)."""
    if engine.dialect.name != "sqlite" or not session.in_transaction():
        return False
    raw = session.connection().connection.driver_connection
    # pysqlite opens a transaction only before a write, so this means "has written".
    return bool(getattr(raw, "in_transaction", False))


@contextmanager
def own_transaction(session: Session, engine: Engine) -> Iterator[Connection]:
    """A connection whose changes are visible to other requests at once.

    Normally its own short transaction, committed on exit. When the caller's SQLite transaction
    already holds the database's only write lock (a service composed inside a larger unit of
    work), a second connection would wait for that lock for ever; the count is then made in the
    caller's transaction instead, which is just as atomic because SQLite admits one writer at a
    time, and is kept when the caller commits (every view commits after a wrong password).
    """
    if _holds_sqlite_write_lock(session, engine):
        yield session.connection()
        return
    with engine.begin() as conn:
        yield conn


def _bump(conn: Connection, key: str, now: datetime, since: datetime) -> tuple[int, datetime]:
    """Add one to a counter atomically (starting a new window if the old one ended)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    table = AuthThrottle.__table__
    stale = table.c.window_started_at < since
    stmt = dialect.insert(table).values(key=key, count=1, window_started_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((stale, 1), else_=table.c.count + 1),
            "window_started_at": case((stale, now), else_=table.c.window_started_at),
        },
    ).returning(table.c.count, table.c.window_started_at)
    row = conn.execute(stmt).one()
    started = row.window_started_at
    if isinstance(started, datetime) and started.tzinfo is None:  # SQLite drops the zone
        started = started.replace(tzinfo=now.tzinfo)
    return int(row.count), started


def _minutes_left(started: datetime, now: datetime, lockout_minutes: int) -> int:
    left = started + timedelta(minutes=lockout_minutes) - now
    return max(1, math.ceil(left.total_seconds() / 60))


def reserve_attempt(session: Session, *, email: str, client: str, limits: Limits,
                    message: Callable[[int], str]) -> Reservation:
    """Count one password check for the account and the address before it is made.

    Commits on its own connection, so other requests see the count at once.

    :raises Throttled: the account or the address is over its limit; the password must not be
        checked. The message (built by `message(minutes)`) says when to try again.
    """
    engine = side_engine(session)
    now = utcnow()
    by_account, by_address = account_key(email), address_key(client)
    (account_count, account_started), (address_count, address_started) = count_hits(
        session, [by_account, by_address], timedelta(minutes=limits.lockout_minutes), now)
    waits = []
    if account_count > limits.max_failures:
        waits.append(_minutes_left(account_started, now, limits.lockout_minutes))
    if address_count > limits.max_failures * ADDRESS_FACTOR:
        waits.append(_minutes_left(address_started, now, limits.lockout_minutes))
    if waits:
        raise LockedOut(message(max(waits)), minutes=max(waits))
    return Reservation(session=session, engine=engine, account_key=by_account,
                       address_key=by_address)


def settle_attempt(reservation: Reservation, *, succeeded: bool) -> None:
    """After a right password, clear the account's count and release the address's reservation.

    A wrong password leaves both counted.
    """
    if not succeeded:
        return
    storage = _redis_storage()
    if storage is not None:
        try:
            storage.clear(reservation.account_key)
            if storage.get(reservation.address_key) > 0:
                # Only a count that exists is given back (incr would start a new window).
                storage.incr(reservation.address_key, 60, amount=-1)
            return
        except storage.base_exceptions:
            log.warning("Redis cannot be reached: throttle counts go to the database")
    with own_transaction(reservation.session, reservation.engine) as conn:
        conn.execute(update(AuthThrottle).where(AuthThrottle.key == reservation.account_key)
                     .values(count=0))
        conn.execute(update(AuthThrottle)
                     .where(AuthThrottle.key == reservation.address_key,
                            AuthThrottle.count > 0)
                     .values(count=AuthThrottle.count - 1))


def _redis_storage() -> RedisStorage | None:
    """The app's Redis counter storage when REDIS_URL is set (one per app and URL)."""
    if not has_app_context():
        return None
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    cache: dict[str, Any] = current_app.extensions.setdefault("portfolio-throttle", {})
    if url not in cache:
        cache[url] = storage_from_string(url, socket_connect_timeout=2, socket_timeout=2,
                                         key_prefix="portfolio-throttle")
    storage: RedisStorage = cache[url]
    return storage


def count_hits(session: Session, keys: list[str], window: timedelta,
               now: datetime | None = None) -> list[tuple[int, datetime]]:
    """Add one to each counter, atomically; return each one's count and when its window began.

    A window begins with its first count and lasts `window`. In Redis when REDIS_URL is set,
    otherwise (or when Redis cannot be reached) in the database, committed at once on a
    connection of its own so that concurrent requests each see a distinct count.
    """
    now = now or utcnow()
    storage = _redis_storage()
    if storage is not None:
        seconds = max(1, int(window.total_seconds()))
        try:
            counted = []
            for key in keys:
                count = storage.incr(key, seconds)
                ends = datetime.fromtimestamp(storage.get_expiry(key), UTC)
                # Redis's clock and ours differ by the time the call took: never later than now.
                counted.append((count, min(now, ends - timedelta(seconds=seconds))))
            return counted
        except storage.base_exceptions:
            log.warning("Redis cannot be reached: throttle counts go to the database")
    with own_transaction(session, side_engine(session)) as conn:
        # Drop windows that ended long ago, so the table stays small.
        conn.execute(delete(AuthThrottle).where(
            AuthThrottle.window_started_at < now - timedelta(days=1)))
        return [_bump(conn, key, now, now - window) for key in keys]


def wait_phrase(minutes: int) -> str:
    """Say how long to wait in plain words."""
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
