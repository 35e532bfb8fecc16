"""Append-only, hash-chained audit trail: record events and verify the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portfolio.db import utcnow
from portfolio.models import AuditEvent, User

GENESIS_HASH = "0" * 64


def _canonical(event: AuditEvent) -> bytes:
    payload = {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "learner_id": event.learner_id,
        "centre_id": event.centre_id,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    """Return the SHA-256 of the event's canonical form."""
    return hashlib.sha256(_canonical(event)).hexdigest()


def record_event(
    session: Session,
    *,
    action: str,
    subject_type: str,
    subject_id: str | int,
    actor: User | None = None,
    actor_role: str | None = None,
    learner_id: int | None = None,
    centre_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain (flushed, not committed)."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appenders so two transactions never read the same chain head.
        session.execute(text("SELECT pg_advisory_xact_lock(7406001)"))
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    event = AuditEvent(
        seq=(head.seq + 1) if head else 1,
        at=utcnow(),
        actor_id=actor.id if actor else None,
        actor_role=actor_role,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        learner_id=learner_id,
        centre_id=centre_id if centre_id is not None else (actor.centre_id if actor else None),
        detail=detail or {},
        prev_hash=head.hash if head else GENESIS_HASH,
    )
    event.hash = compute_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str

    def __str__(self) -> str:
        return f"event #{self.seq}: {self.message}"


def verify_chain(session: Session) -> tuple[int, list[ChainProblem]]:
    """Recompute every hash and link; return the number of events checked and the problems."""
    problems: list[ChainProblem] = []
    previous_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
        count += 1
        if event.seq != expected_seq:
            problems.append(
                ChainProblem(event.seq, f"events #{expected_seq}..#{event.seq - 1} are missing")
            )
        if event.prev_hash != previous_hash:
            problems.append(
                ChainProblem(event.seq, "does not follow the event before it (deleted/reordered)")
            )
        if compute_hash(event) != event.hash:
            problems.append(ChainProblem(event.seq, "content was edited after it was recorded"))
        previous_hash = event.hash
        expected_seq = event.seq + 1
    return count, problems


def chain_head(session: Session) -> str:
    """Return the hash of the newest event (the genesis hash for an empty trail)."""
    head = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    return head or GENESIS_HASH


def count_events(session: Session) -> int:
    """Return the number of audit events."""
    return session.scalar(select(func.count(AuditEvent.id))) or 0
