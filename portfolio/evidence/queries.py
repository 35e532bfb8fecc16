"""Read evidence, always through the enrolment's permission check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from portfolio.errors import NotFound
from portfolio.evidence.redaction import may_open
from portfolio.models import (
    Criterion,
    Enrolment,
    Evidence,
    EvidenceFile,
    EvidenceMapping,
    EvidenceVersion,
    User,
)
from portfolio.permissions import can_view_enrolment


def get_evidence(session: Session, evidence_id: int, user: User) -> Evidence:
    """Return an evidence item the user may see, with versions, files and mappings loaded."""
    evidence = session.scalar(
        select(Evidence)
        .where(Evidence.id == evidence_id)
        .options(
            joinedload(Evidence.enrolment).joinedload(Enrolment.learner),
            joinedload(Evidence.enrolment).joinedload(Enrolment.unit),
            selectinload(Evidence.versions).selectinload(EvidenceVersion.files),
            selectinload(Evidence.mappings).joinedload(EvidenceMapping.criterion),
        )
    )
    if evidence is None or not can_view_enrolment(user, evidence.enrolment):
        raise NotFound("No such evidence, or it is not evidence you can see.")
    return evidence


def get_file(session: Session, file_id: int, user: User) -> EvidenceFile:
    """Return an evidence file the user may download."""
    row = session.execute(
        select(EvidenceFile, EvidenceVersion, Enrolment)
        .join(EvidenceVersion, EvidenceVersion.id == EvidenceFile.version_id)
        .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
        .join(Enrolment, Enrolment.id == Evidence.enrolment_id)
        .options(joinedload(Enrolment.learner))
        .where(EvidenceFile.id == file_id)
    ).first()
    if row is None or not can_view_enrolment(user, row.Enrolment) \
            or not may_open(user, row.EvidenceVersion, row.Enrolment):
        # An original replaced for its personal data opens for the learner's assessor alone.
        raise NotFound("No such file, or it is not one you can see.")
    return row.EvidenceFile


@dataclass(frozen=True)
class EvidenceRow:
    id: int
    kind: str
    status: str
    title: str
    activity_on: date | None
    version: int
    file_count: int
    criteria: tuple[str, ...]
    created_by_id: int


def list_evidence(session: Session, enrolment_id: int, *, kind: str | None = None,
                  status: str | None = None, after_id: int | None = None,
                  limit: int | None = None) -> list[EvidenceRow]:
    """Return the enrolment's evidence with titles, file counts and mapped criteria (3 queries),
    newest activity first; with `after_id`, in id order after that id (keyset paging), at most
    `limit` items."""
    current = and_(EvidenceVersion.evidence_id == Evidence.id,
                   EvidenceVersion.version == Evidence.current_version)
    query = (
        select(Evidence.id, Evidence.kind, Evidence.status, EvidenceVersion.title,
               EvidenceVersion.activity_on, Evidence.current_version, EvidenceVersion.id,
               Evidence.created_by_id)
        .join(EvidenceVersion, current)
        .where(Evidence.enrolment_id == enrolment_id)
        .order_by(EvidenceVersion.activity_on.desc(), Evidence.id.desc())
    )
    if kind:
        query = query.where(Evidence.kind == kind)
    if status:
        query = query.where(Evidence.status == status)
    if after_id is not None:
        query = query.where(Evidence.id > after_id).order_by(None).order_by(Evidence.id)
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    version_ids = [r[6] for r in rows]
    evidence_ids = [r[0] for r in rows]
    counts = dict(session.execute(
        select(EvidenceFile.version_id, func.count(EvidenceFile.id))
        .where(EvidenceFile.version_id.in_(version_ids)).group_by(EvidenceFile.version_id)
    ).all()) if version_ids else {}
    mapped: dict[int, list[str]] = {}
    if evidence_ids:
        for evidence_id, number in session.execute(
            select(EvidenceMapping.evidence_id, Criterion.number)
            .join(Criterion, Criterion.id == EvidenceMapping.criterion_id)
            .where(EvidenceMapping.evidence_id.in_(evidence_ids),
                   EvidenceMapping.removed_at.is_(None))
            .order_by(Criterion.position)
        ):
            mapped.setdefault(evidence_id, []).append(number)
    return [EvidenceRow(r[0], r[1], r[2], r[3], r[4], r[5], counts.get(r[6], 0),
                        tuple(mapped.get(r[0], ())), r[7]) for r in rows]

