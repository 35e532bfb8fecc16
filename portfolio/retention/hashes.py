"""What signature verification needs from retention: the text hash each removed evidence
version had, read from the hash-chained audit events that removed them (kept apart from
`portfolio.retention.services` so that signing depends on the models alone)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.models import AuditEvent

REMOVED_ACTION = "retention.evidence_removed"


def removal_hashes(session: Session, evidence_ids: set[int]) -> dict[tuple[int, int], str]:
    """The body hash each removed version had, from the audit events that removed them."""
    found: dict[tuple[int, int], str] = {}
    if not evidence_ids:
        return found
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.action == REMOVED_ACTION, AuditEvent.subject_type == "evidence",
            AuditEvent.subject_id.in_([str(i) for i in evidence_ids]))):
        for number, digest in ((event.detail or {}).get("body_sha256") or {}).items():
            found.setdefault((int(event.subject_id), int(number)), digest)
    return found
