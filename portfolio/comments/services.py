"""The conversation on one evidence item: who may read it, who may post, and who has seen what.

Who may read: whoever may see the evidence (`permissions.can_view_enrolment`: the learner, their
assessor, their IQA, and the centre's admins). Who may post: the learner, the assessor and the
IQA of the enrolment, the people the conversation is between. Admins read but do not post. An
EQA never reaches the evidence page (404); inside an open pack they read the conversation of the
pack's evidence on a read-only page, and have no way to post.

Comments are kept: there is no edit and no delete. They live beside the evidence, never inside a
version, so no content hash or signature changes when somebody comments.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import PermissionDenied, ValidationFailed
from portfolio.models import CommentRead, Enrolment, Evidence, EvidenceComment, Role, User
from portfolio.permissions import can_view_enrolment

MAX_CHARS = 5000
# A second identical comment by the same person this soon is a double send, not a new comment.
REPEAT_WINDOW = timedelta(seconds=10)


def can_read(user: User, enrolment: Enrolment) -> bool:
    """Whoever may see the evidence may read its conversation."""
    return can_view_enrolment(user, enrolment)


def can_post(user: User, enrolment: Enrolment) -> bool:
    """The learner, their assigned assessor and their assigned IQA; nobody else."""
    if not user.is_active:
        return False
    return ((enrolment.learner_id == user.id and user.has_role(Role.LEARNER))
            or (enrolment.assessor_id == user.id and user.has_role(Role.ASSESSOR))
            or (enrolment.iqa_id is not None and enrolment.iqa_id == user.id
                and user.has_role(Role.IQA)))


def role_in(user_id: int, enrolment: Enrolment) -> str:
    """What the person is to this learner, as shown beside their name."""
    if user_id == enrolment.learner_id:
        return "learner"
    if user_id == enrolment.assessor_id:
        return "assessor"
    if user_id == enrolment.iqa_id:
        return "iqa"
    return "admin"


def participants(enrolment: Enrolment) -> list[User]:
    """The people the conversation is between, in the order they are named."""
    people = [enrolment.learner, enrolment.assessor]
    if enrolment.iqa is not None:
        people.append(enrolment.iqa)
    return people


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _clean(body: str) -> str:
    text = (body or "").replace("\r\n", "\n").strip()
    if not text:
        raise ValidationFailed("Write a comment before sending it.", field="body")
    if len(text) > MAX_CHARS:
        raise ValidationFailed(
            f"A comment can be up to {MAX_CHARS:,} characters; this one has {len(text):,}. "
            "Shorten it, or split it into two comments.", field="body")
    return text


def add_comment(session: Session, evidence: Evidence, *, actor: User, body: str, nonce: str,
                now: datetime) -> tuple[EvidenceComment, bool]:
    """Add a comment (flushed, not committed); return it and whether it is new.

    A form sent twice (same nonce), or the same words by the same person within a few seconds,
    returns the comment already made instead of adding a second one.
    """
    enrolment = evidence.enrolment
    if not can_post(actor, enrolment):
        raise PermissionDenied("Only the learner, their assessor and their IQA can comment on "
                               "this evidence.")
    text = _clean(body)
    nonce = (nonce or "").strip()
    if not nonce or len(nonce) > 64:
        raise ValidationFailed("This form is incomplete. Reload the page and send it again.",
                               field="body")
    earlier = session.scalar(select(EvidenceComment).where(EvidenceComment.nonce == nonce))
    if earlier is not None:
        if earlier.evidence_id != evidence.id or earlier.author_id != actor.id:
            raise ValidationFailed("This form was already used. Reload the page and send "
                                   "your comment again.", field="body")
        return earlier, False
    repeat = session.scalar(
        select(EvidenceComment).where(
            EvidenceComment.evidence_id == evidence.id, EvidenceComment.author_id == actor.id,
            EvidenceComment.body_md == text, EvidenceComment.created_at >= now - REPEAT_WINDOW)
        .order_by(EvidenceComment.id.desc()).limit(1))
    if repeat is not None:
        return repeat, False
    comment = EvidenceComment(evidence_id=evidence.id, author_id=actor.id, body_md=text,
                              created_at=now, nonce=nonce)
    try:
        with session.begin_nested():
            session.add(comment)
            session.flush()
    except IntegrityError:
        # The same form arrived twice at once and the other request won: use its comment.
        earlier = session.scalar(select(EvidenceComment).where(EvidenceComment.nonce == nonce))
        if earlier is None:
            raise
        return earlier, False
    record_event(session, action="comment.added", subject_type="evidence",
                 subject_id=evidence.id, actor=actor, actor_role=role_in(actor.id, enrolment),
                 learner_id=enrolment.learner_id, centre_id=enrolment.learner.centre_id,
                 detail={"comment_id": comment.id})
    # Whoever writes has seen everything up to their own comment.
    mark_seen(session, actor, evidence.id, now)
    return comment, True


def mark_seen(session: Session, user: User, evidence_id: int, now: datetime) -> None:
    """Record that the person saw the conversation now (flushed, not committed)."""
    row = session.get(CommentRead, (user.id, evidence_id))
    if row is None:
        session.add(CommentRead(user_id=user.id, evidence_id=evidence_id, last_seen_at=now))
    elif row.last_seen_at < now:
        row.last_seen_at = now
    session.flush()


@dataclass
class ShownComment:
    comment: EvidenceComment
    role: str
    is_new: bool
    seen_by: list[User] = field(default_factory=list)
    not_seen_by: list[User] = field(default_factory=list)


@dataclass
class Thread:
    evidence_id: int
    comments: list[ShownComment]
    can_post: bool
    nonce: str
    max_chars: int = MAX_CHARS
    form: Any = None  # the comment form, set by the page drawing the thread


def list_comments(session: Session, evidence_id: int) -> list[EvidenceComment]:
    return list(session.scalars(
        select(EvidenceComment).where(EvidenceComment.evidence_id == evidence_id)
        .options(joinedload(EvidenceComment.author))
        .order_by(EvidenceComment.created_at, EvidenceComment.id)))


def last_seen(session: Session, evidence_id: int) -> dict[int, datetime]:
    rows = session.execute(select(CommentRead.user_id, CommentRead.last_seen_at)
                           .where(CommentRead.evidence_id == evidence_id))
    return {user_id: seen_at for user_id, seen_at in rows}


def build_thread(session: Session, evidence: Evidence, viewer: User, *,
                 allow_post: bool = True) -> Thread:
    """The conversation as the viewer sees it: each comment, who has seen it and who has not,
    and which comments arrived since the viewer last looked."""
    enrolment = evidence.enrolment
    seen = last_seen(session, evidence.id)
    mine = seen.get(viewer.id)
    if allow_post:
        # The person reading the page is seeing every comment on it now (the page records it
        # once drawn); the EQA's read-only view is not part of the conversation.
        seen[viewer.id] = utcnow()
    shown = []
    for comment in list_comments(session, evidence.id):
        others = [p for p in participants(enrolment) if p.id != comment.author_id]
        seen_by = [p for p in others if p.id in seen and seen[p.id] >= comment.created_at]
        shown.append(ShownComment(
            comment=comment, role=role_in(comment.author_id, enrolment),
            is_new=comment.author_id != viewer.id and (mine is None
                                                       or comment.created_at > mine),
            seen_by=seen_by, not_seen_by=[p for p in others if p not in seen_by]))
    return Thread(evidence_id=evidence.id, comments=shown,
                  can_post=allow_post and can_post(viewer, enrolment), nonce=new_nonce())
