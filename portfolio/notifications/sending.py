"""Emailing notifications: the notifications table is the queue, never the request.

`send_due_emails` is run by `portfolio notifications send` (cron), by a thread inside
`portfolio worker`, and by a thread `portfolio serve` starts. Each run sends:

- to people who chose "immediate": every unread notification not yet emailed;
- to people who chose "daily" (the default): one digest of their unread notifications created
  before the most recent NOTIFY_DIGEST_HOUR (local time, NOTIFY_TIMEZONE) and not yet emailed, so
  a digest goes out once a day whenever the sender runs after that hour;
- to people who chose "off": nothing.

Rows are claimed with `UPDATE ... SET emailed_at WHERE emailed_at IS NULL RETURNING id` and the
claim is committed before sending, so two senders at once never email the same row twice; a
message that cannot be delivered releases its rows for the next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from portfolio.db import get_database, utcnow
from portfolio.models import Notification, User
from portfolio.notify import Message, send_quietly

logger = logging.getLogger(__name__)

DEFAULT_DIGEST_HOUR = 7
DEFAULT_TIMEZONE = "Europe/London"


@dataclass
class SendResult:
    immediate: int = 0  # emails sent to "immediate" people
    digests: int = 0  # daily digests sent
    failed: int = 0  # emails that could not be delivered (their rows wait for the next run)

    def __str__(self) -> str:
        return (f"{self.immediate} immediate email(s), {self.digests} daily digest(s) sent"
                + (f"; {self.failed} could not be delivered and will be retried"
                   if self.failed else ""))


def digest_cutoff(now: datetime, config: Mapping[str, Any]) -> datetime:
    """The most recent digest moment at or before `now`: today's (or yesterday's) digest hour."""
    zone = ZoneInfo(str(config.get("NOTIFY_TIMEZONE") or config.get("DEFAULT_TIMEZONE")
                        or DEFAULT_TIMEZONE))
    hour = int(config.get("NOTIFY_DIGEST_HOUR", DEFAULT_DIGEST_HOUR))
    local = now.astimezone(zone)
    moment = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if moment > local:
        moment = (local - timedelta(days=1)).replace(hour=hour, minute=0, second=0,
                                                     microsecond=0)
    return moment.astimezone(UTC)


def _day(value: datetime, config: Mapping[str, Any], person: User | None = None) -> str:
    """A time as the person reads it: in their centre's zone, else the installation's."""
    name = getattr(getattr(person, "centre", None), "timezone", None)
    try:
        zone = ZoneInfo(str(name or config.get("DEFAULT_TIMEZONE") or DEFAULT_TIMEZONE))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    local = value.astimezone(zone)
    return f"{local.day} {local:%b %Y}, {local:%H:%M} {local:%Z}"


def _base(config: Mapping[str, Any]) -> str:
    return str(config.get("PUBLIC_URL") or "").rstrip("/")


def _message(person: User, rows: list[Notification], config: Mapping[str, Any],
             digest: bool) -> Message:
    base = _base(config)
    page = f"{base}/notifications"
    if not digest and len(rows) == 1:
        subject = rows[0].title
        lines = [rows[0].title, "", f"Open it: {base}/notifications/{rows[0].id}"]
    else:
        subject = (f"Your daily summary: {len(rows)} notification"
                   f"{'s' if len(rows) != 1 else ''}" if digest
                   else f"{len(rows)} new notifications")
        lines = []
        for row in rows:
            lines += [f"- {row.title} ({_day(row.created_at, config, person)})",
                      f"  {base}/notifications/{row.id}"]
    how = ("once a day, as this summary" if digest else "as soon as something happens")
    body = "\n".join([f"Hello {person.full_name},", "", *lines, "",
                      f"You are emailed about your notifications {how}. Read them all, or change "
                      f"how often you are emailed, at {page}", ""])
    return Message(to=(person.email,), subject=subject, body=body)


def _claim(session: Session, ids: list[int], now: datetime) -> list[int]:
    claimed = session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.emailed_at.is_(None))
        .values(emailed_at=now).returning(Notification.id),
        execution_options={"synchronize_session": False}).scalars().all()
    session.commit()  # other senders now skip these rows
    return sorted(claimed)


def _release(session: Session, ids: list[int]) -> None:
    session.execute(update(Notification).where(Notification.id.in_(ids))
                    .values(emailed_at=None),
                    execution_options={"synchronize_session": False})
    session.commit()


def send_due_emails(session: Session, config: Mapping[str, Any], now: datetime) -> SendResult:
    """Send every email that is due at `now`; commits its claims. Safe to run concurrently."""
    cutoff = digest_cutoff(now, config)
    due = session.execute(
        select(Notification.id, Notification.recipient_id, User.email_notifications)
        .join(User, User.id == Notification.recipient_id)
        .where(Notification.emailed_at.is_(None), Notification.read_at.is_(None),
               User.is_active.is_(True),
               or_(User.email_notifications == "immediate",
                   and_(User.email_notifications == "daily",
                        Notification.created_at < cutoff)))
        .order_by(Notification.recipient_id, Notification.id)).all()
    session.rollback()  # end the read so claims below see other senders' commits
    by_person: dict[tuple[int, str], list[int]] = {}
    for row in due:
        by_person.setdefault((row.recipient_id, row.email_notifications), []).append(row.id)
    result = SendResult()
    for (person_id, frequency), ids in by_person.items():
        claimed = _claim(session, ids, now)
        if not claimed:
            continue
        person = session.get(User, person_id)
        rows = list(session.scalars(select(Notification).where(Notification.id.in_(claimed))
                                    .order_by(Notification.created_at, Notification.id)))
        digest = frequency == "daily"
        if person is None or send_quietly(_message(person, rows, config, digest),
                                          config) is None:
            _release(session, claimed)
            result.failed += 1
            continue
        if digest:
            result.digests += 1
        else:
            result.immediate += 1
    session.commit()
    return result


def run_once(app: Flask, now: datetime | None = None) -> SendResult:
    """One sending run with the app's database and settings."""
    with app.app_context(), get_database(app).sessionmaker() as session:
        return send_due_emails(session, app.config, now or utcnow())


class BackgroundSender:
    """A daemon thread running `run_once` every NOTIFY_SEND_INTERVAL seconds until stopped."""

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="notification-sender",
                                       daemon=True)

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                run_once(self.app)
            except Exception as exc:  # noqa: BLE001 - keep sending on the next round
                # Only the class name: a database or SMTP message may quote personal data.
                logger.warning("notification emails not sent this round: %s",
                               type(exc).__name__)
            self.stopped.wait(self.interval)

    def start(self) -> BackgroundSender:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self.stopped.set()
        self.thread.join(timeout)


def start_background_sender(app: Flask) -> BackgroundSender | None:
    """Start the sender thread; None when NOTIFY_SEND_INTERVAL is 0 (cron sends instead)."""
    interval = float(app.config.get("NOTIFY_SEND_INTERVAL", 60))
    if interval <= 0:
        return None
    return BackgroundSender(app, interval).start()
