"""Reading and marking a person's own notifications, and their email frequency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
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


def unread_count(session: Session, user_id: int) -> int:
    """The bell's figure: one COUNT over the recipient's unread rows (indexed)."""
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.recipient_id == user_id, Notification.read_at.is_(None))) or 0


def own_query(user_id: int) -> Select[Notification]:
    """The person's notifications; listed newest first by id (`portfolio.paging.paginate`
    with descending=True)."""
    return select(Notification).where(Notification.recipient_id == user_id)


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
