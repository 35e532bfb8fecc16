"""Notifications: one row per person told about something, also the queue of emails to send."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.users import User

# How often a person is emailed about their notifications (User.email_notifications).
EMAIL_FREQUENCIES = ("immediate", "daily", "off")
DEFAULT_EMAIL_FREQUENCY = "daily"


class Notification(Base):
    """Something one person should know about or act on, derived from one audit event.

    `read_at` is set when the person opens it (or the list showing it); `emailed_at` once an
    email (immediate or digest) carrying it has been claimed for sending, so it is never sent
    twice.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient_read", "recipient_id", "read_at"),
        # The list pages by keyset, newest first: a page reads one index range.
        Index("ix_notifications_recipient_id", "recipient_id", "id"),
        Index("ix_notifications_unsent", "emailed_at", "recipient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    # A path inside the app ("/evidence/12"), never a full address.
    link: Mapped[str] = mapped_column(String(500))
    enrolment_id: Mapped[int | None] = mapped_column(ForeignKey("enrolments.id"))
    learner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    recipient: Mapped[User] = relationship(foreign_keys=[recipient_id])
