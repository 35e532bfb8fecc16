"""Reading and marking a person's own notifications, and their email frequency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portfolio.db import rowcount, utcnow
from portfolio.errors import NotFound, ValidationFailed
from portfolio.models import Notification, User
from portfolio.models.notifications import EMAIL_FREQUENCIES

PAGE_SIZE = 25


@dataclass(frozen=True)
class Row:
    notification: Notification
    was_unread: bool


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    number: int
    has_previous: bool
    has_next: bool
    total: int


def unread_count(session: Session, user_id: int) -> int:
    """The bell's figure: one COUNT over the recipient's unread rows (indexed)."""
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.recipient_id == user_id, Notification.read_at.is_(None))) or 0


def list_page(session: Session, user_id: int, number: int, size: int = PAGE_SIZE) -> Page:
    """One page of the person's notifications, newest first."""
    total = session.scalar(select(func.count(Notification.id))
                           .where(Notification.recipient_id == user_id)) or 0
    last = max(1, -(-total // size))
    number = min(max(1, number), last)
    items = list(session.scalars(
        select(Notification).where(Notification.recipient_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((number - 1) * size).limit(size)))
    return Page(items, number, number > 1, number < last, total)


def get_own(session: Session, notification_id: int, user_id: int) -> Notification:
    """The person's own notification; anyone else's looks like one that does not exist."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.recipient_id != user_id:
        raise NotFound("No such notification.")
    return notification


def mark_read(session: Session, user_id: int, ids: list[int]) -> int:
    """Mark these of the person's notifications read (those already read keep their time)."""
    if not ids:
        return 0
    result = session.execute(
        update(Notification)
        .where(Notification.recipient_id == user_id, Notification.id.in_(ids),
               Notification.read_at.is_(None))
        .values(read_at=utcnow()), execution_options={"synchronize_session": False})
    return rowcount(result)


def mark_all_read(session: Session, user_id: int) -> int:
    result = session.execute(
        update(Notification)
        .where(Notification.recipient_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow()), execution_options={"synchronize_session": False})
    return rowcount(result)


def set_frequency(session: Session, user: User, frequency: str) -> None:
    """Choose how often the person is emailed: immediate, daily or off."""
    if frequency not in EMAIL_FREQUENCIES:
        raise ValidationFailed("Choose how often you want to be emailed.",
                               field="email_notifications")
    user.email_notifications = frequency
    session.flush()


def when(value: datetime) -> str:
    """"14 Mar 2025 09:30 GMT" in the reader's centre's time zone (see `portfolio.display`)."""
    from portfolio.display import when as shown

    return shown(value)
