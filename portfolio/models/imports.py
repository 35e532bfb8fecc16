"""A spreadsheet of learners and enrolments an admin uploaded: kept, with its checks re-run,
until it is imported (inline or by a background job) or discarded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.job_states import JobStatus
from portfolio.models.users import Centre, User

IMPORT_STATUSES = ("pending", "queued", "running", "done", "failed", "discarded", "expired")
IMPORT_MODES = ("all", "good")


class PeopleImport(Base):
    """One uploaded CSV file. `content` holds the file's text while it waits to be confirmed;
    it is emptied once the import ends (done, failed, discarded or expired), so the people in
    it are not kept twice. The page is reached by a random token whose SHA-256 is stored here,
    and only by the admin who uploaded it, in their centre."""

    __tablename__ = "people_imports"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'queued', 'running', 'done', 'failed', "
                        "'discarded', 'expired')", name="status_known"),
        CheckConstraint("mode IS NULL OR mode IN ('all', 'good')", name="mode_known"),
        CheckConstraint("done_rows >= 0 AND done_rows <= total_rows", name="progress_in_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    row_count: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.PENDING)
    # "all": refuse everything if any row is bad; "good": import only the rows that pass.
    mode: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Progress of the import: rows to write, rows written (or skipped) so far.
    total_rows: Mapped[int] = mapped_column(default=0)
    done_rows: Mapped[int] = mapped_column(default=0)
    people_created: Mapped[int] = mapped_column(default=0)
    people_reused: Mapped[int] = mapped_column(default=0)
    enrolments_created: Mapped[int] = mapped_column(default=0)
    rows_skipped: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(300), default="")
    # Rows skipped while importing and why: [[row number, reason], ...].
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    centre: Mapped[Centre] = relationship()
    created_by: Mapped[User] = relationship()
