"""Keep `search_entries` in step with the evidence, feedback and comments they describe.

A listener runs after every flush and rewrites the entries of what that flush wrote, on the same
connection, so an entry is committed (or rolled back) with its change and a search never finds
text that is no longer there. The full-text index follows the entries by itself (a generated
column on PostgreSQL, triggers on SQLite).

Only an evidence item's current version is indexed: an earlier version, or an original replaced
for its personal data, is never found by search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, delete, event, insert, select
from sqlalchemy.orm import Session

from portfolio.db import utcnow
from portfolio.models import (
    Evidence,
    EvidenceComment,
    EvidenceFile,
    EvidenceReview,
    EvidenceVersion,
    SearchEntry,
)

# The most text kept per entry: enough for any reflective account or a long email thread, and
# a bound on what one upload can add to the index.
MAX_BODY_CHARS = 100_000
TITLE_CHARS = 200
# Matched words come back from the index between these two (Unicode private-use) characters;
# they are taken out of indexed text so that nothing a person wrote can pose as a match.
START, STOP = "\ue000", "\ue001"
_UNMARK = str.maketrans({START: " ", STOP: " "})
# Markdown's emphasis, code and heading marks: noise in a snippet, and no word is made of them.
_MARKDOWN_MARKS = re.compile(r"[*`#]+")


def file_text(preview: dict[str, Any] | None, filename: str) -> str:
    """The words of one file worth finding: its name and the text its preview read from it."""
    preview = preview or {}
    parts = [filename]
    email = preview.get("email")
    if isinstance(email, dict):
        parts += [str(email.get("subject") or ""), str(email.get("sender") or "")]
    parts.append(str(preview.get("text") or ""))
    return "\n".join(p for p in parts if p)


def _evidence_rows(conn: Connection, evidence_ids: list[int]) -> list[dict[str, Any]]:
    current = and_(EvidenceVersion.evidence_id == Evidence.id,
                   EvidenceVersion.version == Evidence.current_version)
    versions = conn.execute(
        select(Evidence.id, Evidence.enrolment_id, EvidenceVersion.id, EvidenceVersion.title,
               EvidenceVersion.activity_place, EvidenceVersion.body_md,
               EvidenceVersion.assessor_only)
        .join(EvidenceVersion, current)
        .where(Evidence.id.in_(evidence_ids))
    ).all()
    version_ids = [v[2] for v in versions]
    texts: dict[int, list[str]] = {}
    if version_ids:
        for version_id, preview, filename in conn.execute(
            select(EvidenceFile.version_id, EvidenceFile.preview, EvidenceFile.filename)
            .where(EvidenceFile.version_id.in_(version_ids))
            .order_by(EvidenceFile.position, EvidenceFile.id)
        ):
            texts.setdefault(version_id, []).append(file_text(preview, filename))
    rows = []
    for evidence_id, enrolment_id, version_id, title, place, body, assessor_only in versions:
        if assessor_only:
            continue
        text = "\n".join([place or "", body or "", *texts.get(version_id, [])])
        rows.append(_row("evidence", evidence_id, evidence_id, enrolment_id, title, text))
    return rows


def _review_rows(conn: Connection, review_ids: list[int]) -> list[dict[str, Any]]:
    return [
        _row("feedback", review_id, evidence_id, enrolment_id, "", feedback)
        for review_id, evidence_id, enrolment_id, feedback in conn.execute(
            select(EvidenceReview.id, EvidenceReview.evidence_id, Evidence.enrolment_id,
                   EvidenceReview.feedback_md)
            .join(Evidence, Evidence.id == EvidenceReview.evidence_id)
            .where(EvidenceReview.id.in_(review_ids)))
        if (feedback or "").strip()
    ]


def _comment_rows(conn: Connection, comment_ids: list[int]) -> list[dict[str, Any]]:
    return [
        _row("comment", comment_id, evidence_id, enrolment_id, "", body)
        for comment_id, evidence_id, enrolment_id, body in conn.execute(
            select(EvidenceComment.id, EvidenceComment.evidence_id, Evidence.enrolment_id,
                   EvidenceComment.body_md)
            .join(Evidence, Evidence.id == EvidenceComment.evidence_id)
            .where(EvidenceComment.id.in_(comment_ids)))
    ]


def _row(kind: str, source_id: int, evidence_id: int, enrolment_id: int, title: str,
         body: str) -> dict[str, Any]:
    return {"kind": kind, "source_id": source_id, "evidence_id": evidence_id,
            "enrolment_id": enrolment_id,
            "title": (title or "")[:TITLE_CHARS].translate(_UNMARK),
            "body": _MARKDOWN_MARKS.sub("", (body or "")[:MAX_BODY_CHARS]).translate(_UNMARK),
            "updated_at": utcnow()}


READERS = {"evidence": _evidence_rows, "feedback": _review_rows, "comment": _comment_rows}


def reindex(conn: Connection, kind: str, source_ids: Iterable[int]) -> int:
    """Rewrite the entries of these sources (removing those with nothing left to find).

    A fixed number of statements, whatever the number of sources. Returns the entries written.
    """
    ids = sorted(set(source_ids))
    if not ids:
        return 0
    rows = READERS[kind](conn, ids)
    conn.execute(delete(SearchEntry).where(SearchEntry.kind == kind,
                                           SearchEntry.source_id.in_(ids)))
    if rows:
        conn.execute(insert(SearchEntry), rows)
    return len(rows)


def rebuild(conn: Connection, batch: int = 500) -> dict[str, int]:
    """Rebuild every entry from the tables (after a restore, or to repair): counts by kind."""
    counts = {}
    sources = {"evidence": Evidence.id, "feedback": EvidenceReview.id,
               "comment": EvidenceComment.id}
    conn.execute(delete(SearchEntry))
    for kind, column in sources.items():
        ids = list(conn.scalars(select(column).order_by(column)))
        counts[kind] = sum(reindex(conn, kind, ids[i:i + batch])
                           for i in range(0, len(ids), batch))
    return counts


def _changed(session: Session) -> dict[str, set[int]]:
    """What this flush wrote that an entry is made from, by entry kind."""
    found: dict[str, set[int]] = {"evidence": set(), "feedback": set(), "comment": set()}
    version_ids: set[int] = set()
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Evidence):
            found["evidence"].add(obj.id)
        elif isinstance(obj, EvidenceVersion):
            found["evidence"].add(obj.evidence_id)
        elif isinstance(obj, EvidenceFile):
            version_ids.add(obj.version_id)
        elif isinstance(obj, EvidenceReview):
            found["feedback"].add(obj.id)
        elif isinstance(obj, EvidenceComment):
            found["comment"].add(obj.id)
    if version_ids:
        found["evidence"] |= set(session.connection().scalars(
            select(EvidenceVersion.evidence_id).where(EvidenceVersion.id.in_(version_ids))))
    return found


@event.listens_for(Session, "after_flush")
def _follow_flush(session: Session, _context: Any) -> None:
    changed = _changed(session)
    if not any(changed.values()):
        return
    conn = session.connection()
    for kind, ids in changed.items():
        reindex(conn, kind, (i for i in ids if i is not None))
