"""Evidence items with every version kept, their content-addressed files, and mappings."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.enrolments import Enrolment
from portfolio.models.qualifications import Criterion

EVIDENCE_KINDS = (
    "reflective_account",
    "witness_testimony",
    "observation",
    "professional_discussion",
    "work_product",
    "log",
    "email",
    "photo",
    "questioning",
    "rpl",
    "descriptor",
)
class EvidenceStatus(enum.StrEnum):
    """Where an evidence item is; the moves between them are in `portfolio.evidence.states`."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    REFERRED = "referred"
    ACCEPTED = "accepted"
    WITHDRAWN = "withdrawn"


EVIDENCE_STATUSES = tuple(status.value for status in EvidenceStatus)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class StoredFile(Base):
    """One file's bytes, stored once under its SHA-256 whatever the number of uses."""

    __tablename__ = "stored_files"
    __table_args__ = (CheckConstraint("size >= 0", name="size_not_negative"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    media_type: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Its bytes were deleted under the centre's retention policy (`portfolio.retention`): no
    # version still in use holds it. Uploading the same bytes again clears it.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Evidence(Base):
    __tablename__ = "evidence"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(EVIDENCE_KINDS)}", name="kind_known"),
        CheckConstraint(f"status IN {_in(EVIDENCE_STATUSES)}", name="status_known"),
        CheckConstraint("current_version >= 1", name="version_positive"),
        Index("ix_evidence_enrolment_status", "enrolment_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    current_version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set once the assessor has confirmed or corrected the mapping: theirs is then final.
    assessor_mapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    enrolment: Mapped[Enrolment] = relationship()
    versions: Mapped[list[EvidenceVersion]] = relationship(
        back_populates="evidence", order_by="EvidenceVersion.version",
        cascade="all, delete-orphan",
    )
    mappings: Mapped[list[EvidenceMapping]] = relationship(
        back_populates="evidence", cascade="all, delete-orphan",
    )


def current_version(evidence: Evidence) -> EvidenceVersion:
    """Return the evidence's current version."""
    return next(v for v in evidence.versions if v.version == evidence.current_version)


class EvidenceVersion(Base):
    """The content of an evidence item at one version; never changed once a newer one exists."""

    __tablename__ = "evidence_versions"
    __table_args__ = (UniqueConstraint("evidence_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"),
                                             index=True)
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    activity_on: Mapped[date | None] = mapped_column(Date)
    activity_place: Mapped[str] = mapped_column(String(200), default="")
    body_md: Mapped[str] = mapped_column(Text, default="")
    # Fields that only some kinds have (witness details, RPL certificate, Q&A pairs ...).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    # The learner confirmed the evidence holds no customer personal data, or has been redacted.
    personal_data_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    change_note: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An original whose personal data a later version masked (or replaced with a descriptor):
    # kept, and shown to the learner's assessor alone.
    assessor_only: Mapped[bool] = mapped_column(Boolean, default=False,
                                                server_default=false())
    # The version this one masked, when it is a redaction.
    redacted_from: Mapped[int | None] = mapped_column(Integer)
    # A descriptor's note of where the original is kept at work and who can show it.
    original_held_at: Mapped[str | None] = mapped_column(String(300))
    # The text and files were removed under the centre's retention policy; the hashes they had
    # are in the hash-chained audit event that removed them, so signatures stay checkable.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    evidence: Mapped[Evidence] = relationship(back_populates="versions")
    files: Mapped[list[EvidenceFile]] = relationship(
        back_populates="version", order_by="EvidenceFile.position",
        cascade="all, delete-orphan",
    )


class EvidenceFile(Base):
    """A file attached to one evidence version, with the preview built when it was uploaded."""

    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("evidence_versions.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("stored_files.sha256"), index=True)
    filename: Mapped[str] = mapped_column(String(160))
    media_type: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(20))
    size: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)
    preview: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    version: Mapped[EvidenceVersion] = relationship(back_populates="files")


class EvidenceMapping(Base):
    """A claim that an evidence item shows a criterion, with the learner's rationale and where."""

    __tablename__ = "evidence_mappings"
    __table_args__ = (
        # One live mapping per evidence and criterion; removed ones stay as history.
        # The learner's mapping is "working towards"; the assessor's is final. Both are kept.
        CheckConstraint("source IN ('learner', 'assessor')", name="source_known"),
        Index(
            "uq_evidence_mappings_live_source", "evidence_id", "criterion_id", "source",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"),
                                             index=True)
    criterion_id: Mapped[int] = mapped_column(ForeignKey("criteria.id"), index=True)
    source: Mapped[str] = mapped_column(String(20), default="learner", server_default="learner")
    # The criterion's version when mapped: a later rewording shows up against old mappings.
    criterion_version: Mapped[int] = mapped_column(default=1)
    rationale: Mapped[str] = mapped_column(String(500), default="")
    location: Mapped[str] = mapped_column(String(120), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    evidence: Mapped[Evidence] = relationship(back_populates="mappings")
    criterion: Mapped[Criterion] = relationship()
