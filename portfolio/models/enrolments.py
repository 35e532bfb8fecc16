"""A learner's registration on a unit, with the assessor and IQA assigned to it."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.qualifications import Unit
from portfolio.models.users import User


class EnrolmentStatus(enum.StrEnum):
    """Where an enrolment is; the moves between them are in `portfolio.enrolments.states`."""

    ACTIVE = "active"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


ENROLMENT_STATUSES = tuple(status.value for status in EnrolmentStatus)


class Enrolment(Base):
    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("learner_id", "unit_id"),
        # Nobody assesses their own work, and the IQA never samples decisions they made.
        CheckConstraint("learner_id <> assessor_id", name="learner_not_assessor"),
        CheckConstraint("iqa_id IS NULL OR iqa_id <> learner_id", name="learner_not_iqa"),
        CheckConstraint("iqa_id IS NULL OR iqa_id <> assessor_id", name="assessor_not_iqa"),
        CheckConstraint("planned_end_on >= start_on", name="dates_ordered"),
        CheckConstraint(
            "status IN ('active', 'completed', 'withdrawn')", name="status_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    assessor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    iqa_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    start_on: Mapped[date] = mapped_column(Date)
    planned_end_on: Mapped[date] = mapped_column(Date)
    employer: Mapped[str] = mapped_column(String(200))
    workplace: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=EnrolmentStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When it last became completed or withdrawn (None while active): retention counts from it.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A legal hold keeps everything, whatever the retention period, until an admin lifts it.
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    hold_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When the learner's work (text and files) was removed under retention.
    work_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    learner: Mapped[User] = relationship(foreign_keys=[learner_id])
    assessor: Mapped[User] = relationship(foreign_keys=[assessor_id])
    iqa: Mapped[User | None] = relationship(foreign_keys=[iqa_id])
    unit: Mapped[Unit] = relationship()

    @validates("status")
    def _mark_finished(self, _key: str, status: str) -> str:
        """Start (or stop) the retention clock when the enrolment ends (or is reopened)."""
        if status == EnrolmentStatus.ACTIVE:
            self.finished_at = None
        elif status != self.status or self.finished_at is None:
            self.finished_at = utcnow()
        return status

    @property
    def centre_id(self) -> int:
        return self.learner.centre_id
