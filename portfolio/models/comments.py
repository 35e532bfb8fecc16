"""Comments on an evidence item, and when each person last saw the conversation.

Comments sit beside the evidence, never inside it: they are not part of any evidence version,
so no content hash and no signature depends on them. They are kept; nobody edits or deletes one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portfolio.db import Base, UTCDateTime, utcnow
from portfolio.models.users import User


class EvidenceComment(Base):
    __tablename__ = "evidence_comments"
    __table_args__ = (Index("ix_evidence_comments_evidence_created", "evidence_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body_md: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The one-use value carried by the form that posted it: a second send of the same form
    # (a double click, a resent request) finds it taken and adds nothing.
    nonce: Mapped[str] = mapped_column(String(64), unique=True)

    author: Mapped[User] = relationship()


class CommentRead(Base):
    """The last time one person opened the page showing an evidence item's conversation."""

    __tablename__ = "comment_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"),
                                             primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
