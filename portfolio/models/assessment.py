"""Assessment: evidence reviews, criterion decisions, content-bound signatures, declarations."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.enrolments import Enrolment
from portfolio.models.qualifications import Criterion
from portfolio.models.users import User

SIGNATURE_PURPOSES = (
    "evidence_declaration",  # learner: this evidence is my own work (on submission)
    "unit_declaration",  # learner: the unit's evidence is my own work
    "criterion_decision",  # assessor: criterion met, citing the evidence relied on
    "countersignature",  # qualified assessor confirms a trainee's decision
    "unit_signoff",  # assessor signs the unit off
    "unit_cosign",  # learner co-signs the unit sign-off
    "iqa_outcome",  # IQA signs a sample's outcome (agree / with actions / disagree)
    "decision_return",  # qualified assessor returns a trainee's decision, with comments
    "assessor_record",  # assessor records their own evidence (an observation) and signs it
)
# "returned": a countersigner sent a trainee's decision back with comments; it never counts,
# and the trainee may decide the criterion again.
class DecisionStatus(enum.StrEnum):
    """Where a criterion decision is; the moves are in `portfolio.assessment.states`."""

    AWAITING_COUNTERSIGNATURE = "awaiting_countersignature"
    MET = "met"
    INVALIDATED = "invalidated"
    REOPENED = "reopened"
    RETURNED = "returned"


DECISION_STATUSES = tuple(status.value for status in DecisionStatus)


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Signature(Base):
    """An authenticated act: who, in which role, the exact statement, when, and over what.

    `content_hash` is SHA-256 over the canonical serialisation of exactly what was signed
    (`content`); `seal` is SHA-256 over the signature's own fields and that hash, so an edit to
    either, made outside the app, is detected by `portfolio signatures verify`.
    """

    __tablename__ = "signatures"
    __table_args__ = (
        CheckConstraint(f"purpose IN {_in(SIGNATURE_PURPOSES)}", name="purpose_known"),
        Index("ix_signatures_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(30))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int]
    signer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signer_role: Mapped[str] = mapped_column(String(20))
    typed_name: Mapped[str] = mapped_column(String(200))
    statement: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    seal: Mapped[str] = mapped_column(String(64))
    # Set when the content changed through the app after signing; the row itself is kept.
    invalidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invalidated_reason: Mapped[str | None] = mapped_column(String(300))

    signer: Mapped[User] = relationship()


class EvidenceReview(Base):
    """The assessor's judgement of one evidence version: accepted or referred back."""

    __tablename__ = "evidence_reviews"
    __table_args__ = (
        CheckConstraint("outcome IN ('accepted', 'referred')", name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    version: Mapped[int]
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(20))
    feedback_md: Mapped[str] = mapped_column(Text, default="")
    # VARCS: valid, authentic, reliable, current, sufficient -> true/false (+ a note).
    varcs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reviewer: Mapped[User] = relationship()


class CriterionDecision(Base):
    """An assessor's signed decision that a criterion is met, citing the evidence relied on."""

    __tablename__ = "criterion_decisions"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(DECISION_STATUSES)}", name="status_known"),
        # A decision that counts always has its signer, time and signature.
        CheckConstraint("signature_id IS NOT NULL AND decided_at IS NOT NULL",
                        name="signed"),
        CheckConstraint(
            "status <> 'met' OR countersigned_by_id IS NOT NULL OR needs_countersignature = 0",
            name="trainee_decisions_countersigned"),
        # One live decision per criterion: a second concurrent "met" fails here.
        Index("uq_criterion_decisions_live", "enrolment_id", "criterion_id", unique=True,
              sqlite_where=text("status IN ('met', 'awaiting_countersignature')"),
              postgresql_where=text("status IN ('met', 'awaiting_countersignature')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"), index=True)
    criterion_id: Mapped[int] = mapped_column(ForeignKey("criteria.id"), index=True)
    status: Mapped[str] = mapped_column(String(30))
    # [{"evidence_id": 1, "version": 2}, ...]
    evidence: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    note_md: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signature_id: Mapped[int] = mapped_column(ForeignKey("signatures.id"))
    needs_countersignature: Mapped[int] = mapped_column(default=0)
    countersigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    countersignature_id: Mapped[int | None] = mapped_column(ForeignKey("signatures.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(300))

    criterion: Mapped[Criterion] = relationship()
    enrolment: Mapped[Enrolment] = relationship()
    decided_by: Mapped[User] = relationship(foreign_keys=[decided_by_id])
    countersigned_by: Mapped[User | None] = relationship(foreign_keys=[countersigned_by_id])
    signature: Mapped[Signature] = relationship(foreign_keys=[signature_id])
