"""Append-only audit trail: events chained by keyed seals, anchored by signed checkpoints.

Each event's `hash` is an HMAC (the installation's seal key) over its content and the previous
event's hash, so rewriting history needs the key as well as the database. The head of the chain
(sequence number and hash) is written, sealed, outside the database after every commit that
adds events (`latest.json`), kept as a dated file every AUDIT_CHECKPOINT_EVERY events, and
embedded in every exported PDF: deleting the newest events then shows as a checkpoint the chain
no longer reaches.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portfolio.db import utcnow
from portfolio.models import AuditEvent, User
from portfolio.notifications.rules import on_event
from portfolio.seals import Sealer, sealer_for

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


def compute_hash(event: AuditEvent, sealer: Sealer) -> str:
    """Return the keyed seal of the event's canonical form."""
    return sealer.audit(_canonical(event))


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
    sealer = sealer_for(session)
    event.hash = compute_hash(event, sealer)
    session.add(event)
    session.flush()
    # Written outside the database once the transaction commits (see `write_checkpoint`).
    session.info["audit_head"] = (event.seq, event.hash)
    # People who must now act (or should know) are told, in the same transaction.
    on_event(session, event)
    return event


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str

    def __str__(self) -> str:
        return f"event #{self.seq}: {self.message}"


# --- checkpoints --------------------------------------------------------------------------

CHECKPOINT_FORMAT = "portfolio-audit-checkpoint"
LATEST = "latest.json"


@dataclass(frozen=True)
class Checkpoint:
    """A sealed record of the chain's head at one moment, kept outside the database."""

    seq: int
    hash: str
    at: str
    key_id: str
    mac: str
    source: str = ""  # where it was read from, for messages

    def payload(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": 1, "seq": self.seq, "hash": self.hash,
                "at": self.at, "key_id": self.key_id}

    def as_dict(self) -> dict[str, Any]:
        return self.payload() | {"mac": self.mac}


def _checkpoint_mac(sealer: Sealer, payload: dict[str, Any]) -> str:
    return sealer.checkpoint(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


def make_checkpoint(sealer: Sealer, seq: int, head_hash: str, at: datetime | None = None
                    ) -> Checkpoint:
    """Seal the chain head (seq, hash) as a checkpoint."""
    moment = (at or utcnow()).isoformat(timespec="seconds")
    draft = Checkpoint(seq, head_hash, moment, sealer.key_id, "")
    return Checkpoint(seq, head_hash, moment, sealer.key_id, _checkpoint_mac(sealer,
                                                                               draft.payload()))


def current_checkpoint(session: Session) -> Checkpoint:
    """Seal the chain head as it is in this session now."""
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return make_checkpoint(sealer_for(session), head.seq if head else 0,
                           head.hash if head else GENESIS_HASH)


def _write_json(path: Path, data: dict[str, Any], *, durable: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, sort_keys=True)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_checkpoint(directory: Path, checkpoint: Checkpoint, *, keep: bool) -> None:
    """Write the checkpoint as the latest one; with `keep`, also as a dated file of its own."""
    data = checkpoint.as_dict()
    if keep:
        stamp = checkpoint.at.replace(":", "").replace("-", "")[:15]
        _write_json(directory / f"checkpoint-{checkpoint.seq:012d}-{stamp}.json", data,
                    durable=True)
    latest = directory / LATEST
    try:
        previous = json.loads(latest.read_text())
        if int(previous.get("seq", 0)) > checkpoint.seq:
            return  # another process already wrote a newer head
    except (OSError, ValueError, TypeError):
        pass
    _write_json(latest, data, durable=False)


def checkpoint_after_commit(session: Session) -> None:
    """Write the head a committed transaction reached (a sessionmaker `after_commit` hook)."""
    head = session.info.pop("audit_head", None)
    if head is None:
        return
    sealer = sealer_for(session)
    if sealer.checkpoint_dir is None:
        return
    seq, head_hash = head
    keep = seq % sealer.checkpoint_every == 0 or seq == 1
    try:
        write_checkpoint(sealer.checkpoint_dir, make_checkpoint(sealer, seq, head_hash),
                         keep=keep)
    except OSError as exc:  # the commit stands; the operator sees it in the log
        logging.getLogger(__name__).error("audit checkpoint not written: %s", exc.strerror)


def forget_head(session: Session, *_args: Any) -> None:
    """Drop the head noted by a transaction that was rolled back."""
    session.info.pop("audit_head", None)


def read_checkpoint(data: Any, source: str) -> Checkpoint | str:
    """Parse one checkpoint record; a message when it is not one."""
    try:
        if data.get("format") != CHECKPOINT_FORMAT:
            return f"{source} is not an audit checkpoint"
        return Checkpoint(int(data["seq"]), str(data["hash"]), str(data["at"]),
                          str(data["key_id"]), str(data["mac"]), source)
    except (AttributeError, KeyError, TypeError, ValueError):
        return f"{source} is not a readable audit checkpoint"


def load_checkpoints(directory: Path | None) -> tuple[list[Checkpoint], list[str]]:
    """Read every checkpoint file in a folder; also return the files that could not be read."""
    found: list[Checkpoint] = []
    unreadable: list[str] = []
    if directory is None or not directory.is_dir():
        return found, unreadable
    for path in sorted(directory.glob("*.json")):
        try:
            parsed = read_checkpoint(json.loads(path.read_text()), path.name)
        except (OSError, ValueError):
            parsed = f"{path.name} is not a readable audit checkpoint"
        (unreadable.append if isinstance(parsed, str) else found.append)(parsed)  # type: ignore
    return found, unreadable


# --- verification -------------------------------------------------------------------------

def verify_chain(session: Session, checkpoints: Iterable[Checkpoint] = ()
                 ) -> tuple[int, list[ChainProblem]]:
    """Re-seal every event and check every link and checkpoint; return the count and problems.

    Catches an event edited in place (even with its hash recomputed without the key), events
    deleted or reordered, and, through the checkpoints, a chain rebuilt from an edited event or
    cut short at its newest end.
    """
    sealer = sealer_for(session)
    problems: list[ChainProblem] = []
    previous_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    pinned: dict[int, list[Checkpoint]] = {}
    for point in checkpoints:
        if point.key_id != sealer.key_id:
            problems.append(ChainProblem(point.seq, f"checkpoint {point.source} was sealed "
                                                    "with another key; it cannot be checked"))
        elif not sealer.same(_checkpoint_mac(sealer, point.payload()), point.mac):
            problems.append(ChainProblem(point.seq, f"checkpoint {point.source} is forged or "
                                                    "was edited (its seal does not match)"))
        else:
            pinned.setdefault(point.seq, []).append(point)
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
        if not sealer.same(compute_hash(event, sealer), event.hash):
            problems.append(ChainProblem(event.seq, "content was edited after it was recorded "
                                                    "(its seal does not match the key)"))
        for point in pinned.pop(event.seq, []):
            if point.hash != event.hash:
                problems.append(ChainProblem(event.seq, (
                    f"differs from checkpoint {point.source} of {point.at}: the chain was "
                    "rewritten from this event or an earlier one")))
        previous_hash = event.hash
        expected_seq = event.seq + 1
    last = expected_seq - 1
    for seq in sorted(pinned):
        if seq == 0:
            continue  # a checkpoint of the empty trail
        newest = max(pinned[seq], key=lambda p: p.at)
        problems.append(ChainProblem(seq, (
            f"is missing: checkpoint {newest.source} of {newest.at} saw the trail reach "
            f"#{seq}, but it now ends at #{last} (the newest events were deleted)")))
    return count, problems


def chain_head(session: Session) -> str:
    """Return the hash of the newest event (the genesis hash for an empty trail)."""
    head = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    return head or GENESIS_HASH
