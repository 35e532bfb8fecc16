"""Requests for witness testimony, answered through a single-use link by people without accounts."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import relationship as link_to  # `relationship` is a column name here

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.enrolments import Enrolment
from portfolio.models.users import User


class WitnessStatus(enum.StrEnum):
    """Where a request is; the moves between them are in `portfolio.witness.states`."""

    PENDING = "pending"
    SIGNED = "signed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    REPLACED = "replaced"


WITNESS_STATUSES = tuple(status.value for status in WitnessStatus)


class WitnessRequest(Base):
    __tablename__ = "witness_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'signed', 'declined', 'cancelled', 'replaced')",
                        name="status_known"),
        # A signed testimony always carries who signed, when, and the hash of its exact text.
        CheckConstraint("status <> 'signed' OR (signed_name IS NOT NULL AND signed_at IS NOT NULL"
                        " AND content_hash IS NOT NULL)", name="signed_complete"),
        Index("ix_witness_requests_email", "witness_email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    witness_name: Mapped[str] = mapped_column(String(200))
    # Minimised (emptied) after the verification window; name, role and relationship stay.
    witness_email: Mapped[str] = mapped_column(String(254))
    witness_role: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    relationship: Mapped[str] = mapped_column(String(200))
    is_expert: Mapped[bool] = mapped_column(Boolean, default=False)
    expert_competence: Mapped[str] = mapped_column(Text, default="")
    activity: Mapped[str] = mapped_column(Text)
    activity_on: Mapped[date] = mapped_column(Date)
    activity_place: Mapped[str] = mapped_column(String(200))
    criterion_ids: Mapped[list[int]] = mapped_column(JSON)
    draft_md: Mapped[str] = mapped_column(Text, default="")
    # SHA-256 of the link's secret; the secret itself is only ever in the email.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=WitnessStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_count: Mapped[int] = mapped_column(default=1)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the witness wrote and signed.
    testimony_md: Mapped[str | None] = mapped_column(Text)
    declared_relationship: Mapped[str | None] = mapped_column(String(200))
    declared_related: Mapped[bool | None] = mapped_column(Boolean)
    signed_name: Mapped[str | None] = mapped_column(String(200))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    decline_reason: Mapped[str | None] = mapped_column(String(500))
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id"))
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("witness_requests.id"))
    contact_minimised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    enrolment: Mapped[Enrolment] = link_to()
    requested_by: Mapped[User] = link_to(foreign_keys=[requested_by_id])
