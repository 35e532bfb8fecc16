"""Generated portfolio PDFs: who made them, when, and the manifest of what they contain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.job_states import JobStatus
from portfolio.models.enrolments import Enrolment
from portfolio.models.users import User


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Random, unguessable: the QR code's verification link carries it.
    public_id: Mapped[str] = mapped_column(String(43), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    pages: Mapped[int]
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    # SHA-256 of the certificate that signed the file; empty for exports made before it was kept.
    signer_fingerprint: Mapped[str | None] = mapped_column(String(64))

    enrolment: Mapped[Enrolment] = relationship()
    created_by: Mapped[User | None] = relationship()


class ExportJob(Base):
    """A PDF export running in the background, with its progress for the browser to show."""

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED)
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(300), default="Waiting to start")
    export_id: Mapped[int | None] = mapped_column(ForeignKey("exports.id"))
    # Set when a worker picks the job up, and beaten while it runs: a job whose heartbeat
    # stops (its process died) is marked failed rather than left "running" for ever.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
