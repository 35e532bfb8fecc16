"""Centres, people, their roles, API tokens and login attempts."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import true

from portfolio.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    LEARNER = "learner"
    ASSESSOR = "assessor"
    IQA = "iqa"
    EQA = "eqa"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.LEARNER: "Learner",
    Role.ASSESSOR: "Assessor",
    Role.IQA: "Internal quality assurer",
    Role.EQA: "External quality assurer",
    Role.ADMIN: "Centre admin",
}
ROLES = tuple(r.value for r in Role)
ASSESSOR_STATUSES = ("trainee", "qualified")


def _sql_in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


DEFAULT_EVIDENCE_DECLARATION = (
    "I confirm that this evidence is my own work, that it is a true record of what I did, and "
    "that I have removed or not included customers' personal details."
)
DEFAULT_UNIT_DECLARATION = (
    "I confirm that all the evidence in this unit is my own work, produced in my workplace, "
    "and that the witness testimonies are from the people named."
)


class Centre(Base):
    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The wording learners sign; each centre may set its own.
    evidence_declaration: Mapped[str] = mapped_column(
        Text, default=DEFAULT_EVIDENCE_DECLARATION, server_default=DEFAULT_EVIDENCE_DECLARATION)
    unit_declaration: Mapped[str] = mapped_column(
        Text, default=DEFAULT_UNIT_DECLARATION, server_default=DEFAULT_UNIT_DECLARATION)
    # The IANA time zone people at the centre read times in; None: DEFAULT_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Retention of learner work (text and files): removed this many months after an enrolment
    # ends (None: kept until the centre sets a period), and, when `work_until_eqa`, only once an
    # external quality assurer's pack that included the enrolment has closed.
    work_keep_months: Mapped[int | None] = mapped_column(Integer)
    work_until_eqa: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            f"assessor_status IS NULL OR assessor_status IN {_sql_in(ASSESSOR_STATUSES)}",
            name="assessor_status_known",
        ),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Only meaningful for assessors: trainee decisions need a qualified countersignature.
    assessor_status: Mapped[str | None] = mapped_column(String(20))
    # Rotated when the password changes or the account is deactivated, ending old sessions.
    login_id: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_urlsafe(32)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Email about notifications: "immediate", "daily" (one digest a day) or "off".
    email_notifications: Mapped[str] = mapped_column(String(10), default="daily",
                                                     server_default="daily")

    centre: Mapped[Centre] = relationship(lazy="joined")
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(r.role) for r in self.role_rows)

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    @property
    def is_trainee_assessor(self) -> bool:
        return self.has_role(Role.ASSESSOR) and self.assessor_status == "trainee"

    # Flask-Login protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return self.login_id


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint(f"role IN {_sql_in(ROLES)}", name="role_known"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), primary_key=True)

    user: Mapped[User] = relationship(back_populates="role_rows")


class ApiToken(Base):
    """A personal access token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The first characters, shown in lists so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """One password check, kept briefly to throttle guessing per account and per address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "attempted_at"),
        Index("ix_login_attempts_client_at", "client", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    client: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class AuthThrottle(Base):
    """An atomic counter of password checks for one account or one address, in a time window.

    The key is a SHA-256 of the scope and the email or address, so neither is stored here.
    """

    __tablename__ = "auth_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginSession(Base):
    """One signed-in browser; the cookie holds the raw id, the database only its SHA-256."""

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user_active", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A coarse description such as "Firefox on Windows"; never the raw user agent or address.
    device: Mapped[str] = mapped_column(String(80), default="Unknown browser")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    """A link to set a password: single-use, expiring, and only its SHA-256 is kept.

    `purpose` "reset": asked for on the sign-in page; "invite": sent by an admin
    (`created_by_id`) so a new person chooses their first password. A newer link of the same
    purpose revokes the earlier ones; using one ends every session of the person."""

    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_user_open", "user_id", "used_at", "revoked_at"),
                      CheckConstraint("purpose IN ('reset', 'invite')", name="purpose_known"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purpose: Mapped[str] = mapped_column(String(10), default="reset", server_default="reset")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
