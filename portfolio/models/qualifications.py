"""Qualifications, units, learning outcomes, criteria (versioned) and their guidance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow

LO_KINDS = ("knowledge", "performance")
GUIDANCE_KIND_VALUES = ("tip", "mistake", "assessor_looks_for")


class Qualification(Base):
    __tablename__ = "qualifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    level: Mapped[int]


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("currency_months >= 1", name="currency_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    qualification_id: Mapped[int] = mapped_column(ForeignKey("qualifications.id"), index=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    number: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    level: Mapped[int]
    credits: Mapped[int]
    guided_learning_hours: Mapped[int]
    unit_type: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text)
    # The unit's assessment rules, as data the coverage rules read.
    workplace_only: Mapped[bool] = mapped_column(Boolean)
    simulation_allowed: Mapped[bool] = mapped_column(Boolean)
    rpl_allowed: Mapped[bool] = mapped_column(Boolean)
    currency_months: Mapped[int]
    assessment_notes_md: Mapped[str] = mapped_column(Text)
    # Bumped whenever the wording of the unit, an outcome or a criterion changes.
    version: Mapped[int] = mapped_column(default=1)
    source_file: Mapped[str] = mapped_column(String(300))
    # SHA-256 of the unit file's parsed content, so an unchanged file loads as a no-op.
    content_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    qualification: Mapped[Qualification] = relationship()
    learning_outcomes: Mapped[list[LearningOutcome]] = relationship(
        back_populates="unit", order_by="LearningOutcome.number", cascade="all, delete-orphan"
    )
    guidance: Mapped[list[GuidanceNote]] = relationship(
        back_populates="unit", order_by="GuidanceNote.position", cascade="all, delete-orphan"
    )


class LearningOutcome(Base):
    __tablename__ = "learning_outcomes"
    __table_args__ = (
        UniqueConstraint("unit_id", "number"),
        CheckConstraint("kind IN ('knowledge', 'performance')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))

    unit: Mapped[Unit] = relationship(back_populates="learning_outcomes")
    criteria: Mapped[list[Criterion]] = relationship(
        back_populates="learning_outcome", order_by="Criterion.position"
    )


class Criterion(Base):
    __tablename__ = "criteria"
    __table_args__ = (
        UniqueConstraint("unit_id", "number"),
        CheckConstraint("required_occurrences >= 1", name="occurrences_positive"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    learning_outcome_id: Mapped[int] = mapped_column(ForeignKey("learning_outcomes.id"), index=True)
    number: Mapped[str] = mapped_column(String(10))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    amplification_md: Mapped[str] = mapped_column(Text, default="")
    required_occurrences: Mapped[int] = mapped_column(default=1)
    version: Mapped[int] = mapped_column(default=1)
    # A criterion dropped from its unit file but still referred to is retired, never deleted.
    is_retired: Mapped[bool] = mapped_column(Boolean, default=False)

    learning_outcome: Mapped[LearningOutcome] = relationship(back_populates="criteria")
    methods: Mapped[list[CriterionMethod]] = relationship(
        cascade="all, delete-orphan", order_by="CriterionMethod.method", lazy="selectin"
    )
    revisions: Mapped[list[CriterionRevision]] = relationship(
        order_by="CriterionRevision.version", cascade="all, delete-orphan"
    )


class CriterionMethod(Base):
    """A method the unit accepts for a criterion; preferred ones are those the spec names."""

    __tablename__ = "criterion_methods"

    criterion_id: Mapped[int] = mapped_column(
        ForeignKey("criteria.id", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[str] = mapped_column(String(40), primary_key=True)
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)


class CriterionRevision(Base):
    """Earlier wording of a criterion, kept when a unit file changes it."""

    __tablename__ = "criterion_revisions"
    __table_args__ = (UniqueConstraint("criterion_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    criterion_id: Mapped[int] = mapped_column(ForeignKey("criteria.id", ondelete="CASCADE"))
    version: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    amplification_md: Mapped[str] = mapped_column(Text)
    superseded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


guidance_criteria = Table(
    "guidance_criteria",
    Base.metadata,
    Column("guidance_id", Integer, ForeignKey("guidance_notes.id", ondelete="CASCADE"),
           primary_key=True),
    Column("criterion_id", Integer, ForeignKey("criteria.id", ondelete="CASCADE"),
           primary_key=True),
)


class GuidanceNote(Base):
    """Advice attached to a unit, and to the criteria it fits (none means the whole unit)."""

    __tablename__ = "guidance_notes"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('tip', 'mistake', 'assessor_looks_for')", name="kind_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))

    unit: Mapped[Unit] = relationship(back_populates="guidance")
    criteria: Mapped[list[Criterion]] = relationship(secondary=guidance_criteria)
