"""Retention of learner work: which enrolments are due, legal holds, and removing the work.

A centre sets how many months after an enrolment ends its learner work (the text of every
evidence version, its files and what was read from them, witness drafts and testimony text) is
kept, and whether it must also wait for an external quality assurer's pack that included the
enrolment to close. A legal hold on an enrolment keeps everything until an admin lifts it.

Removing work keeps what the assessment record and the signatures need: titles, kinds, dates,
details, the file names, sizes and hashes, mappings, reviews, decisions, signatures and the IQA's
records. Each evidence item's removal is one hash-chained audit event that records the SHA-256 of
every version's text, so a signature over removed work is still checked against what was signed
(see `portfolio.assessment.signing`). A file's bytes are deleted only when no version still in
use holds them (files are stored once by hash and may be shared).
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, ValidationFailed
from portfolio.models import (
    Centre,
    Enrolment,
    EqaPack,
    EqaPackEnrolment,
    Evidence,
    EvidenceFile,
    EvidenceVersion,
    Export,
    StoredFile,
    User,
    WitnessRequest,
)
from portfolio.models.enrolments import EnrolmentStatus

REMOVED_ACTION = "retention.evidence_removed"
WORK_REMOVED_ACTION = "retention.work_removed"
MAX_KEEP_MONTHS = 240
HOLD_REASON_CHARS = 300


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when the
    day does not exist there)."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _pack_closed(today: date) -> Any:
    """SQL: an unrevoked EQA pack whose period is over included the enrolment."""
    return exists(select(EqaPackEnrolment.enrolment_id).join(EqaPack).where(
        EqaPackEnrolment.enrolment_id == Enrolment.id, EqaPack.revoked_at.is_(None),
        EqaPack.valid_to < today))


def _not_removed_since_it_ended() -> Any:
    """SQL: the work was never removed, or the enrolment was reopened (an IQA disagreed),
    added work and ended again since the last removal."""
    return or_(Enrolment.work_removed_at.is_(None),
               Enrolment.work_removed_at < Enrolment.finished_at)


def removed_since_it_ended(enrolment: Enrolment) -> bool:
    return enrolment.work_removed_at is not None and (
        enrolment.finished_at is None or enrolment.work_removed_at >= enrolment.finished_at)


def _centre_enrolments(centre: Centre) -> Any:
    return select(Enrolment).join(User, User.id == Enrolment.learner_id).where(
        User.centre_id == centre.id)


def work_due(session: Session, centre: Centre, now: datetime | None = None) -> list[Enrolment]:
    """The centre's enrolments whose learner work the next run removes (oldest end first)."""
    if centre.work_keep_months is None:
        return []
    now = now or utcnow()
    query = _centre_enrolments(centre).where(
        Enrolment.status != EnrolmentStatus.ACTIVE, Enrolment.finished_at.is_not(None),
        Enrolment.finished_at <= months_before(now, centre.work_keep_months),
        Enrolment.hold_reason.is_(None), _not_removed_since_it_ended())
    if centre.work_until_eqa:
        query = query.where(_pack_closed(now.date()))
    return list(session.scalars(query.order_by(Enrolment.finished_at, Enrolment.id)))


@dataclass
class Overview:
    """What the centre's admin sees on the retention page."""

    due: list[Enrolment]
    waiting_for_eqa: list[Enrolment]
    held: list[Enrolment]
    removed: int


def overview(session: Session, centre: Centre, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    due = work_due(session, centre, now)
    waiting: list[Enrolment] = []
    if centre.work_keep_months is not None and centre.work_until_eqa:
        waiting = list(session.scalars(_centre_enrolments(centre).where(
            Enrolment.status != EnrolmentStatus.ACTIVE, Enrolment.finished_at.is_not(None),
            Enrolment.finished_at <= months_before(now, centre.work_keep_months),
            Enrolment.hold_reason.is_(None), _not_removed_since_it_ended(),
            ~_pack_closed(now.date())).order_by(Enrolment.finished_at, Enrolment.id)))
    held = list(session.scalars(_centre_enrolments(centre).where(
        Enrolment.hold_reason.is_not(None)).order_by(Enrolment.hold_at, Enrolment.id)))
    removed = session.scalar(_centre_enrolments(centre).where(
        Enrolment.work_removed_at.is_not(None)).with_only_columns(func.count(Enrolment.id))) or 0
    return Overview(due=due, waiting_for_eqa=waiting, held=held, removed=removed)


def set_policy(session: Session, centre: Centre, *, actor: User, keep_months: int | None,
               until_eqa: bool) -> bool:
    """Change the centre's retention period; return True when something changed (audited)."""
    if keep_months is not None and not 1 <= keep_months <= MAX_KEEP_MONTHS:
        raise ValidationFailed(
            f"Keep learner work between 1 and {MAX_KEEP_MONTHS} months after an enrolment "
            "ends, or leave it empty to keep it until you choose a period.",
            field="work_keep_months")
    before = (centre.work_keep_months, centre.work_until_eqa)
    if before == (keep_months, until_eqa):
        return False
    centre.work_keep_months, centre.work_until_eqa = keep_months, until_eqa
    record_event(session, action="retention.policy", subject_type="centre",
                 subject_id=centre.id, actor=actor, centre_id=centre.id,
                 detail={"work_keep_months": keep_months, "work_until_eqa": until_eqa,
                         "before": {"work_keep_months": before[0],
                                    "work_until_eqa": before[1]}})
    session.flush()
    return True


def place_hold(session: Session, enrolment: Enrolment, *, actor: User, reason: str) -> None:
    """Put a legal hold on an enrolment: nothing of it is removed while it lasts."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why the hold is needed (a claim, an appeal, an "
                               "investigation), so whoever lifts it knows.", field="reason")
    if len(reason) > HOLD_REASON_CHARS:
        raise ValidationFailed(f"Keep the reason under {HOLD_REASON_CHARS} characters.",
                               field="reason")
    if enrolment.hold_reason is not None:
        raise InvalidTransition("This enrolment is already on hold.")
    enrolment.hold_reason, enrolment.hold_at, enrolment.hold_by_id = reason, utcnow(), actor.id
    record_event(session, action="retention.hold", subject_type="enrolment",
                 subject_id=enrolment.id, actor=actor, learner_id=enrolment.learner_id,
                 detail={"enrolment_id": enrolment.id})
    session.flush()


def lift_hold(session: Session, enrolment: Enrolment, *, actor: User) -> None:
    if enrolment.hold_reason is None:
        raise InvalidTransition("This enrolment is not on hold.")
    enrolment.hold_reason = enrolment.hold_at = enrolment.hold_by_id = None
    record_event(session, action="retention.hold_lifted", subject_type="enrolment",
                 subject_id=enrolment.id, actor=actor, learner_id=enrolment.learner_id,
                 detail={"enrolment_id": enrolment.id})
    session.flush()


@dataclass
class Removal:
    """What removing one enrolment's work did; `blobs` are deleted after the commit."""

    enrolment_id: int
    versions: int = 0
    files: int = 0
    blobs: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)


def remove_work(session: Session, enrolment: Enrolment, *, actor: User | None = None,
                now: datetime | None = None) -> Removal:
    """Remove an enrolment's learner work (flushes; the caller commits, then deletes the
    returned blobs and export files with `delete_removed`).

    :raises InvalidTransition: the enrolment is on hold, still active, or already removed.
    """
    if enrolment.hold_reason is not None:
        raise InvalidTransition("This enrolment is on legal hold: nothing of it is removed.")
    if enrolment.status == EnrolmentStatus.ACTIVE:
        raise InvalidTransition("This enrolment is still active: its work is kept.")
    if removed_since_it_ended(enrolment):
        raise InvalidTransition("This enrolment's work was already removed.")
    now = now or utcnow()
    result = Removal(enrolment.id)
    shas: set[str] = set()
    for evidence in session.scalars(select(Evidence).where(
            Evidence.enrolment_id == enrolment.id).order_by(Evidence.id)):
        hashes: dict[str, str] = {}
        for version in evidence.versions:
            if version.removed_at is not None:
                continue
            hashes[str(version.version)] = hashlib.sha256(version.body_md.encode()).hexdigest()
            version.body_md = ""
            version.removed_at = now
            result.versions += 1
            for item in version.files:
                shas.add(item.sha256)
                item.preview = {}
                result.files += 1
        if hashes:
            record_event(session, action=REMOVED_ACTION, subject_type="evidence",
                         subject_id=evidence.id, actor=actor, learner_id=enrolment.learner_id,
                         detail={"enrolment_id": enrolment.id, "body_sha256": hashes})
    for request in session.scalars(select(WitnessRequest).where(
            WitnessRequest.enrolment_id == enrolment.id)):
        request.draft_md = ""
        if request.testimony_md is not None:
            request.testimony_md = ""
    for export in session.scalars(select(Export).where(Export.enrolment_id == enrolment.id)):
        result.exports.append(export.filename)
    enrolment.work_removed_at = now
    session.flush()
    for sha in sorted(shas):
        still_used = session.scalar(select(exists().where(
            EvidenceFile.sha256 == sha, EvidenceFile.version_id == EvidenceVersion.id,
            EvidenceVersion.removed_at.is_(None))))
        if not still_used:
            stored = session.get(StoredFile, sha)
            if stored is not None:
                stored.removed_at = now
            result.blobs.append(sha)
    record_event(session, action=WORK_REMOVED_ACTION, subject_type="enrolment",
                 subject_id=enrolment.id, actor=actor, learner_id=enrolment.learner_id,
                 detail={"enrolment_id": enrolment.id, "versions": result.versions,
                         "files": result.files, "objects_deleted": len(result.blobs)})
    session.flush()
    return result


def removal_hashes(session: Session, evidence_ids: set[int]) -> dict[tuple[int, int], str]:
    """The body hash each removed version had, from the audit events that removed them."""
    from portfolio.models import AuditEvent

    found: dict[tuple[int, int], str] = {}
    if not evidence_ids:
        return found
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.action == REMOVED_ACTION, AuditEvent.subject_type == "evidence",
            AuditEvent.subject_id.in_([str(i) for i in evidence_ids]))):
        for number, digest in ((event.detail or {}).get("body_sha256") or {}).items():
            found.setdefault((int(event.subject_id), int(number)), digest)
    return found


def delete_removed(session: Session, removal: Removal, store: Any, exports: Any,
                   cache_dir: Path | None = None) -> int:
    """After the commit: delete the bytes the removal freed, the enrolment's exported PDFs and
    the laid-out parts of its last export; return how many objects went. A blob is deleted
    only while its row still says removed (an upload of the same bytes since then brought it
    back into use)."""
    deleted = 0
    if cache_dir is not None:
        from portfolio.export.pipeline import forget_parts

        deleted += forget_parts(cache_dir, f"enrolment-{removal.enrolment_id}")
    for sha in removal.blobs:
        row = session.get(StoredFile, sha, populate_existing=True)
        if row is not None and row.removed_at is None:
            continue
        store.remove(sha)
        deleted += 1
    for name in removal.exports:
        exports.delete(name)
        deleted += 1
    return deleted


@dataclass
class RunReport:
    removed: list[Removal] = field(default_factory=list)
    objects_deleted: int = 0

    def __str__(self) -> str:
        versions = sum(r.versions for r in self.removed)
        return (f"removed the learner work of {len(self.removed)} enrolment(s) under their "
                f"centre's retention period ({versions} evidence version(s), "
                f"{self.objects_deleted} stored object(s) deleted)")


def run(sessionmaker: Any, store: Any, exports: Any, *, cache_dir: Path | None = None,
        dry_run: bool = False, now: datetime | None = None) -> RunReport:
    """Remove the work of every enrolment that is due, one enrolment per transaction."""
    now = now or utcnow()
    report = RunReport()
    with sessionmaker() as session:
        due = [(e.id) for centre in session.scalars(select(Centre).order_by(Centre.id))
               for e in work_due(session, centre, now)]
    if dry_run:
        report.removed = [Removal(enrolment_id) for enrolment_id in due]
        return report
    for enrolment_id in due:
        with sessionmaker() as session:
            enrolment = session.get(Enrolment, enrolment_id, with_for_update=True)
            if enrolment is None or enrolment.hold_reason is not None or \
                    removed_since_it_ended(enrolment):
                continue  # held or removed since the list was read
            removal = remove_work(session, enrolment, now=now)
            session.commit()
            report.objects_deleted += delete_removed(session, removal, store, exports,
                                                     cache_dir)
            report.removed.append(removal)
    return report
