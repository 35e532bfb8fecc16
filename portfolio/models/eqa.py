"""External quality assurance: access packs scoped to a sample, and the log of every page opened.

An EQA access pack gives one external quality assurer read-only access to a few enrolments
(learner and unit) between two dates, until it ends or a centre admin revokes it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.job_states import JobStatus
from portfolio.models.enrolments import Enrolment
from portfolio.models.users import User


class EqaPack(Base):
    __tablename__ = "eqa_packs"
    __table_args__ = (
        CheckConstraint("valid_to >= valid_from", name="dates_ordered"),
        # A revoked pack always says who revoked it and when.
        CheckConstraint("(revoked_at IS NULL) = (revoked_by_id IS NULL)", name="revoked_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    eqa_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    # Both days included, in the centre's calendar.
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_reason: Mapped[str] = mapped_column(String(300), default="")

    eqa: Mapped[User] = relationship(foreign_keys=[eqa_id])
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])
    items: Mapped[list[EqaPackEnrolment]] = relationship(
        back_populates="pack", cascade="all, delete-orphan", order_by="EqaPackEnrolment.position")

    def state(self, today: date) -> str:
        """"revoked", "upcoming", "open" or "expired" on the given day."""
        if self.revoked_at is not None:
            return "revoked"
        if today < self.valid_from:
            return "upcoming"
        if today > self.valid_to:
            return "expired"
        return "open"


class EqaPackEnrolment(Base):
    """One enrolment (a learner on a unit) the EQA asked to see."""

    __tablename__ = "eqa_pack_enrolments"

    pack_id: Mapped[int] = mapped_column(ForeignKey("eqa_packs.id", ondelete="CASCADE"),
                                         primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), primary_key=True,
                                              index=True)
    position: Mapped[int] = mapped_column(default=0)

    pack: Mapped[EqaPack] = relationship(back_populates="items")
    enrolment: Mapped[Enrolment] = relationship()


class EqaAccessLog(Base):
    """One page an EQA opened (or was refused) inside one of their packs."""

    __tablename__ = "eqa_access_log"
    __table_args__ = (Index("ix_eqa_access_log_pack_at", "pack_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("eqa_packs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class EqaPackJob(Base):
    """An EQA pack ZIP being made in the background, with the progress its page shows; once
    done it keeps the stored ZIP, reused while the pack's content is unchanged."""

    __tablename__ = "eqa_pack_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'expired')",
                        name="status_known"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_in_range"),
        # At most one job waiting or running per pack: a double click cannot start two.
        Index("uq_eqa_pack_jobs_one_active", "pack_id", unique=True,
              sqlite_where=text("status IN ('queued', 'running')"),
              postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("eqa_packs.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # SHA-256 of what the pack would hold (see eqa.pack_jobs.content_key): equal means reusable.
    content_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED)
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(300), default="Waiting to start")
    filename: Mapped[str | None] = mapped_column(String(200))  # under eqa/ in the export files
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    export_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    pack: Mapped[EqaPack] = relationship()
