"""EQA access packs: create and revoke them, open one for its EQA, and scope every id to it.

Everything an external quality assurer reads goes through `open_pack` and then one of the
`pack_*` lookups below, which only ever return objects of the pack's own enrolments. The
portfolio's own routes keep using `permissions.can_view_enrolment`, which never lets an EQA in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from portfolio.models import (
    CriterionDecision,
    Enrolment,
    EqaAccessLog,
    EqaPack,
    EqaPackEnrolment,
    Evidence,
    EvidenceFile,
    EvidenceMapping,
    EvidenceVersion,
    Role,
    User,
    UserRole,
    WitnessStatus,
)
from portfolio.permissions import is_admin_of

MAX_NOTE = 2000
MAX_TITLE = 200
MAX_REASON = 300
LOG_PAGE = 200


class PackNotOpenYet(DomainError):
    """The pack exists and is the EQA's, but its first day has not come."""

    status = 403
    title = "This pack is not open yet"

    def __init__(self, pack: EqaPack) -> None:
        super().__init__(f"This pack opens on {pack.valid_from:%d %B %Y}.")
        self.pack = pack


class PackClosed(DomainError):
    """The pack has expired or was revoked: its pages are gone for good."""

    status = 410
    title = "This pack has expired"

    def __init__(self, pack: EqaPack, state: str) -> None:
        if state == "revoked":
            when = pack.revoked_at.strftime("%d %B %Y") if pack.revoked_at else ""
            message = f"The centre withdrew this pack on {when}."
            self.title = "This pack was withdrawn"
        else:
            message = f"This pack was open until {pack.valid_to:%d %B %Y}."
        super().__init__(message)
        self.pack = pack
        self.state = state


# ---------------------------------------------------------------- admin: create and revoke


@dataclass(frozen=True)
class PackInput:
    eqa_id: int | None
    enrolment_ids: list[int]
    title: str
    note: str
    valid_from: date | None
    valid_to: date | None


def _eqa_of_centre(session: Session, user_id: int | None, centre_id: int) -> User:
    user = session.get(User, user_id) if user_id else None
    if (user is None or user.centre_id != centre_id or not user.is_active
            or not user.has_role(Role.EQA)):
        raise ValidationFailed("Choose an external quality assurer of your centre.",
                               field="eqa_id")
    return user


def _enrolments_of_centre(session: Session, ids: list[int], centre_id: int) -> list[Enrolment]:
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        raise ValidationFailed("Choose at least one learner's enrolment for the sample.",
                               field="enrolment_ids")
    rows = {e.id: e for e in session.scalars(
        select(Enrolment).where(Enrolment.id.in_(wanted))
        .options(joinedload(Enrolment.learner)))}
    if any(i not in rows or rows[i].centre_id != centre_id for i in wanted):
        raise ValidationFailed("One of the chosen enrolments is not in your centre.",
                               field="enrolment_ids")
    return [rows[i] for i in wanted]


def create_pack(session: Session, data: PackInput, *, actor: User, today: date) -> EqaPack:
    """Create an access pack for one EQA of the actor's centre.

    :raises PermissionDenied: the actor is not an admin.
    :raises ValidationFailed: an unknown EQA or enrolment, missing title, or bad dates.
    """
    if not is_admin_of(actor, actor.centre_id):
        raise PermissionDenied("Only a centre admin creates EQA access packs.")
    title = " ".join((data.title or "").split())
    if not title or len(title) > MAX_TITLE:
        raise ValidationFailed("Give the pack a name, such as the visit or sample reference "
                               f"(at most {MAX_TITLE} characters).", field="title")
    note = (data.note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationFailed(f"Keep the note under {MAX_NOTE} characters.", field="note")
    eqa = _eqa_of_centre(session, data.eqa_id, actor.centre_id)
    enrolments = _enrolments_of_centre(session, data.enrolment_ids, actor.centre_id)
    if data.valid_from is None:
        raise ValidationFailed("Enter the first day the EQA may open the pack.",
                               field="valid_from")
    if data.valid_to is None:
        raise ValidationFailed("Enter the last day the EQA may open the pack.", field="valid_to")
    if data.valid_to < data.valid_from:
        raise ValidationFailed("The last day must be on or after the first day.",
                               field="valid_to")
    if data.valid_to < today:
        raise ValidationFailed("The last day has already passed: choose a later date.",
                               field="valid_to")
    pack = EqaPack(centre_id=actor.centre_id, eqa_id=eqa.id, title=title, note=note,
                   valid_from=data.valid_from, valid_to=data.valid_to, created_by_id=actor.id,
                   created_at=utcnow())
    pack.items = [EqaPackEnrolment(enrolment_id=e.id, position=n)
                  for n, e in enumerate(enrolments)]
    session.add(pack)
    session.flush()
    record_event(session, action="eqa.pack_create", subject_type="eqa_pack", subject_id=pack.id,
                 actor=actor, actor_role=Role.ADMIN.value, centre_id=actor.centre_id,
                 detail={"eqa_id": eqa.id, "enrolment_ids": [e.id for e in enrolments],
                         "valid_from": pack.valid_from.isoformat(),
                         "valid_to": pack.valid_to.isoformat()})
    return pack


def revoke_pack(session: Session, pack: EqaPack, *, actor: User, reason: str,
                today: date) -> None:
    """End a pack early; the EQA's next request is refused.

    :raises InvalidTransition: the pack was already revoked or has expired.
    """
    state = pack.state(today)
    if state == "revoked":
        raise InvalidTransition("This pack was already revoked.")
    if state == "expired":
        raise InvalidTransition("This pack has already expired; there is nothing to revoke.")
    reason = " ".join((reason or "").split())
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"Keep the reason under {MAX_REASON} characters.", field="reason")
    pack.revoked_at = utcnow()
    pack.revoked_by_id = actor.id
    pack.revoked_reason = reason
    session.flush()
    record_event(session, action="eqa.pack_revoke", subject_type="eqa_pack", subject_id=pack.id,
                 actor=actor, actor_role=Role.ADMIN.value, centre_id=pack.centre_id,
                 detail={"reason": reason})


def admin_pack(session: Session, pack_id: int, admin: User) -> EqaPack:
    """Return a pack of the admin's own centre; NotFound otherwise."""
    pack = session.get(EqaPack, pack_id)
    if pack is None or not is_admin_of(admin, pack.centre_id):
        raise NotFound("No such EQA access pack in your centre.")
    return pack


def list_centre_packs(session: Session, centre_id: int) -> list[EqaPack]:
    return list(session.scalars(
        select(EqaPack).where(EqaPack.centre_id == centre_id)
        .options(joinedload(EqaPack.eqa), selectinload(EqaPack.items))
        .order_by(EqaPack.valid_from.desc(), EqaPack.id.desc())))


def centre_eqas(session: Session, centre_id: int) -> list[User]:
    return list(session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(User.centre_id == centre_id, User.is_active.is_(True),
               UserRole.role == Role.EQA.value)
        .order_by(User.full_name)))


def log_counts(session: Session, pack_ids: list[int]) -> dict[int, int]:
    if not pack_ids:
        return {}
    return dict(session.execute(
        select(EqaAccessLog.pack_id, func.count(EqaAccessLog.id))
        .where(EqaAccessLog.pack_id.in_(pack_ids)).group_by(EqaAccessLog.pack_id)).all())


def access_log_query(pack: EqaPack) -> Select[EqaAccessLog]:
    """A pack's access log with who made each request; listed newest first by id
    (`portfolio.paging.paginate` with descending=True), a page at a time."""
    return (select(EqaAccessLog).where(EqaAccessLog.pack_id == pack.id)
            .options(joinedload(EqaAccessLog.user)))


# ---------------------------------------------------------------- the EQA's side


def packs_of(session: Session, user: User) -> list[EqaPack]:
    """Every pack made for this EQA (any state), newest first."""
    if not user.is_active or not user.has_role(Role.EQA):
        return []
    return list(session.scalars(
        select(EqaPack).where(EqaPack.eqa_id == user.id, EqaPack.centre_id == user.centre_id)
        .options(selectinload(EqaPack.items))
        .order_by(EqaPack.valid_from.desc(), EqaPack.id.desc())))


def own_pack(session: Session, pack_id: int, user: User) -> EqaPack:
    """Return the pack if it was made for this EQA, in any state; NotFound otherwise."""
    pack = session.get(EqaPack, pack_id)
    if (pack is None or pack.eqa_id != user.id or pack.centre_id != user.centre_id
            or not user.is_active or not user.has_role(Role.EQA)):
        raise NotFound("No such pack, or it was not shared with you.")
    return pack


def check_open(pack: EqaPack, today: date) -> None:
    """Let the request through only while the pack is open.

    :raises PackNotOpenYet: before its first day (403).
    :raises PackClosed: after its last day or once revoked (410).
    """
    state = pack.state(today)
    if state == "upcoming":
        raise PackNotOpenYet(pack)
    if state in ("expired", "revoked"):
        raise PackClosed(pack, state)


def enrolment_ids(pack: EqaPack) -> list[int]:
    return [item.enrolment_id for item in pack.items]


def pack_enrolments(session: Session, pack: EqaPack) -> list[Enrolment]:
    order = {item.enrolment_id: item.position for item in pack.items}
    rows = session.scalars(select(Enrolment).where(Enrolment.id.in_(list(order))).options(
        joinedload(Enrolment.learner), joinedload(Enrolment.assessor),
        joinedload(Enrolment.iqa), joinedload(Enrolment.unit)))
    return sorted(rows, key=lambda e: order[e.id])


def pack_enrolment(session: Session, pack: EqaPack, enrolment_id: int) -> Enrolment:
    if enrolment_id not in enrolment_ids(pack):
        raise NotFound("That learner is not part of this pack.")
    enrolment = session.get(Enrolment, enrolment_id)
    if enrolment is None:
        raise NotFound("That learner is not part of this pack.")
    return enrolment


def pack_evidence(session: Session, pack: EqaPack, evidence_id: int) -> Evidence:
    """An evidence item of one of the pack's enrolments (withdrawn items are not shown)."""
    evidence = session.scalar(
        select(Evidence).where(Evidence.id == evidence_id,
                               Evidence.enrolment_id.in_(enrolment_ids(pack)),
                               Evidence.status != "withdrawn")
        .options(joinedload(Evidence.enrolment),
                 selectinload(Evidence.versions).selectinload(EvidenceVersion.files),
                 selectinload(Evidence.mappings).joinedload(EvidenceMapping.criterion)))
    if evidence is None:
        raise NotFound("That evidence is not part of this pack.")
    return evidence


def pack_file(session: Session, pack: EqaPack, file_id: int) -> EvidenceFile:
    """A file of the current version of an evidence item in the pack."""
    row = session.scalar(
        select(EvidenceFile)
        .join(EvidenceVersion, EvidenceVersion.id == EvidenceFile.version_id)
        .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
        .where(EvidenceFile.id == file_id,
               EvidenceVersion.version == Evidence.current_version,
               Evidence.status != "withdrawn",
               Evidence.enrolment_id.in_(enrolment_ids(pack))))
    if row is None:
        raise NotFound("That file is not part of this pack.")
    return row


def log_access(session: Session, pack: EqaPack, user: User, *, method: str, path: str,
               status: int) -> None:
    """Append one row to the pack's access log (flushed, not committed)."""
    session.add(EqaAccessLog(pack_id=pack.id, user_id=user.id, method=method[:10],
                             path=path[:500], status=status, at=utcnow()))
    session.flush()


# ---------------------------------------------------------------- the staff list


@dataclass
class StaffMember:
    user_id: int
    name: str
    email: str
    roles: list[str] = field(default_factory=list)
    assessor_status: str | None = None
    learners: list[str] = field(default_factory=list)


def staff_list(session: Session, pack: EqaPack) -> list[StaffMember]:
    """Everyone who assessed, countersigned or quality-assured the pack's enrolments."""
    people: dict[int, StaffMember] = {}

    def add(user: User, role: str, learner: str) -> None:
        member = people.setdefault(user.id, StaffMember(user.id, user.full_name, user.email))
        if role not in member.roles:
            member.roles.append(role)
        if user.has_role(Role.ASSESSOR):
            member.assessor_status = user.assessor_status
        if learner not in member.learners:
            member.learners.append(learner)

    enrolments = pack_enrolments(session, pack)
    for e in enrolments:
        add(e.assessor, "Assessor", e.learner.full_name)
        if e.iqa is not None:
            add(e.iqa, "Internal quality assurer", e.learner.full_name)
    names = {e.id: e.learner.full_name for e in enrolments}
    countersigners = session.execute(
        select(CriterionDecision.enrolment_id, User)
        .join(User, User.id == CriterionDecision.countersigned_by_id)
        .where(CriterionDecision.enrolment_id.in_(list(names)))).all()
    for enrolment_id, user in countersigners:
        add(user, "Countersigning assessor", names[enrolment_id])
    order = {"Assessor": 0, "Countersigning assessor": 1, "Internal quality assurer": 2}
    return sorted(people.values(), key=lambda m: (min(order[r] for r in m.roles), m.name))


def summary(pack: EqaPack) -> dict[str, Any]:
    """A pack's facts for the audit trail and the sampling record (ids only)."""
    return {"pack_id": pack.id, "eqa_id": pack.eqa_id, "enrolment_ids": enrolment_ids(pack),
            "valid_from": pack.valid_from.isoformat(), "valid_to": pack.valid_to.isoformat()}


# ---------------------------------------------------------------- the witness status list


@dataclass(frozen=True)
class WitnessRow:
    name: str
    role: str
    relationship: str
    expert: bool
    how: str
    evidence_id: int | None


def witness_list(session: Session, enrolment: Enrolment) -> list[WitnessRow]:
    """Everyone whose testimony is in the portfolio: signed online, or recorded on paper."""
    from portfolio.models import WitnessRequest

    rows: list[WitnessRow] = []
    online: set[int] = set()
    for w in session.scalars(select(WitnessRequest).where(
            WitnessRequest.enrolment_id == enrolment.id,
            WitnessRequest.status == WitnessStatus.SIGNED)
            .order_by(WitnessRequest.id)):
        if w.evidence_id:
            online.add(w.evidence_id)
        rows.append(WitnessRow(w.witness_name, f"{w.witness_role}, {w.organisation}",
                               w.declared_relationship or w.relationship, w.is_expert,
                               f"Signed online {w.signed_at:%d %b %Y}" if w.signed_at
                               else "Signed online", w.evidence_id))
    for item in session.scalars(select(Evidence).where(
            Evidence.enrolment_id == enrolment.id, Evidence.kind == "witness_testimony",
            Evidence.status != "withdrawn").options(selectinload(Evidence.versions))
            .order_by(Evidence.id)):
        if item.id in online:
            continue
        details = next(v for v in item.versions if v.version == item.current_version).details
        rows.append(WitnessRow(str(details.get("witness_name") or "Not named"),
                               str(details.get("witness_role") or ""),
                               str(details.get("relationship") or ""),
                               bool(details.get("is_expert")), "Recorded on paper", item.id))
    return rows
