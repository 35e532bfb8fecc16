"""What staff search reads: one row per evidence item (its current version, with the text taken
from its files), per piece of written feedback and per comment.

The rows are written by `portfolio.search.index` in the same transaction as the change they
follow. The full-text index beside them depends on the database: on PostgreSQL a generated
`document` tsvector column with a GIN index, on SQLite an FTS5 table kept by triggers. Neither
is declared here (the migration makes them, and `migrations/env.py` leaves them out of the
comparison), because the model is the same on both databases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portfolio.db import Base, UTCDateTime, utcnow


class SearchEntry(Base):
    __tablename__ = "search_entries"
    __table_args__ = (UniqueConstraint("kind", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "evidence" (source_id = evidence id), "feedback" (a review's id), "comment" (a comment's id)
    kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[int]
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"),
                                             index=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"),
                                              index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
