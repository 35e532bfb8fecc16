"""Add, revise, submit, withdraw and map evidence; every change is versioned and audited."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, PermissionDenied, ValidationFailed
from portfolio.evidence import states
from portfolio.evidence.kinds import KINDS, Kind
from portfolio.evidence.storage import StagedFile
from portfolio.models import (
    Criterion,
    Enrolment,
    Evidence,
    EvidenceFile,
    EvidenceMapping,
    EvidenceVersion,
    StoredFile,
    User,
    current_version,
)
from portfolio.permissions import can_add_evidence, can_change_evidence, can_map_evidence

EDITABLE = states.EDITABLE
# A witness must not be a relative of the learner (the field's rules for witness testimony).
RELATIVE_WORDS = re.compile(
    r"\b(mother|mum|mom|father|dad|parent|brother|sister|sibling|wife|husband|spouse|partner|"
    r"son|daughter|child|cousin|aunt|uncle|niece|nephew|grand\w*|relative|family|in-law)\b",
    re.IGNORECASE,
)


@dataclass
class EvidenceInput:
    """What a person entered for one version of an evidence item."""

    title: str
    activity_on: date | None
    activity_place: str = ""
    body_md: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    is_simulated: bool = False
    personal_data_confirmed: bool = False
    change_note: str = ""


def _role_of(user: User, enrolment: Enrolment) -> str:
    return "learner" if enrolment.learner_id == user.id else "assessor"


def _clean_details(kind: Kind, details: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for spec in kind.details:
        value = details.get(spec.name)
        if spec.type == "checkbox":
            cleaned[spec.name] = bool(value)
            continue
        text = str(value or "").strip()
        if spec.required and not text:
            raise ValidationFailed(f"Enter {spec.label[0].lower() + spec.label[1:]}.",
                                   field=spec.name)
        if len(text) > 2000:
            raise ValidationFailed(f"{spec.label} is too long.", field=spec.name)
        cleaned[spec.name] = text
    if kind.key == "witness_testimony":
        if RELATIVE_WORDS.search(cleaned.get("relationship", "")):
            raise ValidationFailed(
                "A relative cannot act as a witness. Ask a manager or colleague who saw the "
                "activity instead.", field="relationship")
        if cleaned.get("is_expert") and not cleaned.get("expert_competence"):
            raise ValidationFailed("Say what makes the witness an expert witness.",
                                   field="expert_competence")
    return cleaned


def _check_input(kind: Kind, data: EvidenceInput, file_count: int, today: date, *,
                 held_at_work: bool = False) -> EvidenceInput:
    title = " ".join((data.title or "").split())
    if not title:
        raise ValidationFailed("Give the evidence a short title.", field="title")
    if len(title) > 200:
        raise ValidationFailed("Keep the title under 200 characters.", field="title")
    if data.activity_on is None:
        raise ValidationFailed(f"Enter the {kind.date_label.lower()}.", field="activity_on")
    if data.activity_on > today:
        raise ValidationFailed("The date cannot be in the future.", field="activity_on")
    body = (data.body_md or "").strip()
    if len(body) > 100_000:
        raise ValidationFailed("The text is too long (100,000 characters at most).",
                               field="body_md")
    if kind.body_required and not body:
        raise ValidationFailed(f"Fill in “{kind.body_label}”.", field="body_md")
    if kind.files == "required" and file_count == 0 and not held_at_work:
        raise ValidationFailed(f"Attach the file: {kind.file_hint}", field="files")
    if kind.files == "none" and file_count:
        raise ValidationFailed("This kind of evidence has no files: the original stays at the "
                               "workplace.", field="files")
    if kind.key == "reflective_account" and not body and file_count == 0:
        raise ValidationFailed("Write your account, or upload it as a Word file.",
                               field="body_md")
    if not data.personal_data_confirmed:
        raise ValidationFailed(
            "Confirm that customers' personal details have been removed, or that there are "
            "none.", field="personal_data_confirmed")
    place = " ".join((data.activity_place or "").split())
    if len(place) > 200:
        raise ValidationFailed("Keep the place under 200 characters.", field="activity_place")
    return EvidenceInput(title, data.activity_on, place, body, _clean_details(kind, data.details),
                         bool(data.is_simulated), True, (data.change_note or "").strip()[:300])


def _attach(session: Session, version: EvidenceVersion, staged: list[StagedFile],
            start: int = 0) -> None:
    for position, item in enumerate(staged, start=start):
        stored = session.get(StoredFile, item.sha256)
        if stored is None:
            session.add(StoredFile(sha256=item.sha256, size=item.size,
                                   media_type=item.sniffed.media_type))
        elif stored.removed_at is not None:
            stored.removed_at = None  # removed under retention, and just uploaded again
        version.files.append(EvidenceFile(
            sha256=item.sha256, filename=item.filename, media_type=item.sniffed.media_type,
            category=item.sniffed.category, size=item.size, position=position,
            preview=item.preview.to_json()))


def add_evidence(session: Session, *, actor: User, enrolment: Enrolment, kind: str,
                 data: EvidenceInput, files: list[StagedFile], today: date) -> Evidence:
    """Create an evidence item (a draft) with its first version and files.

    :raises PermissionDenied: the actor may not add this kind to this portfolio.
    :raises ValidationFailed: a field is missing or wrong.
    """
    if kind not in KINDS:
        raise ValidationFailed("Choose a kind of evidence.", field="kind")
    spec = KINDS[kind]
    if not can_add_evidence(actor, enrolment, spec.added_by):
        raise PermissionDenied(f"You cannot add {spec.label.lower()} evidence to this portfolio.")
    if enrolment.status != "active":
        raise InvalidTransition("This enrolment is closed: no new evidence can be added.")
    clean = _check_input(spec, data, len(files), today)
    now = utcnow()
    evidence = Evidence(enrolment_id=enrolment.id, kind=kind, status=states.DRAFT,
                        current_version=1, created_by_id=actor.id, created_at=now,
                        updated_at=now)
    version = EvidenceVersion(version=1, created_by_id=actor.id, created_at=now,
                              **_version_fields(clean))
    evidence.versions.append(version)
    session.add(evidence)
    _attach(session, version, files)
    session.flush()
    record_event(session, action="evidence.create", subject_type="evidence",
                 subject_id=evidence.id, actor=actor, actor_role=_role_of(actor, enrolment),
                 learner_id=enrolment.learner_id,
                 detail={"kind": kind, "version": 1, "title": clean.title,
                         "files": [f.sha256 for f in files]})
    return evidence


def _version_fields(clean: EvidenceInput) -> dict[str, Any]:
    return {"title": clean.title, "activity_on": clean.activity_on,
            "activity_place": clean.activity_place, "body_md": clean.body_md,
            "details": clean.details, "is_simulated": clean.is_simulated,
            "personal_data_confirmed": clean.personal_data_confirmed,
            "change_note": clean.change_note}


def _check_editable(actor: User, evidence: Evidence, expected_version: int | None) -> None:
    if not can_change_evidence(actor, evidence.enrolment, evidence.created_by_id):
        raise PermissionDenied("Only the person who added this evidence can change it.")
    if evidence.status not in EDITABLE:
        raise InvalidTransition(
            f"This evidence is {evidence.status}: it can be changed only while it is a draft "
            "or after it has been referred back.")
    if expected_version is not None and expected_version != evidence.current_version:
        raise InvalidTransition(
            "This evidence was changed since you opened it (now version "
            f"{evidence.current_version}). Reload the page to see the latest and try again; "
            "your changes were not saved.")


def revise_evidence(session: Session, evidence: Evidence, *, actor: User, data: EvidenceInput,
                    keep_file_ids: list[int], files: list[StagedFile], expected_version: int,
                    today: date, held_at_work: bool = False) -> EvidenceVersion:
    """Save a new version; the earlier one is kept unchanged. `held_at_work`: a descriptor,
    whose original (the file a kind may need) is kept at the workplace.

    :raises InvalidTransition: not editable now, or changed since the form was loaded.
    """
    _check_editable(actor, evidence, expected_version)
    spec = KINDS[evidence.kind]
    previous = current_version(evidence)
    kept = [f for f in previous.files if f.id in set(keep_file_ids)]
    # A descriptor stays one: its original is still held at work in later versions.
    held_at = previous.original_held_at
    held_at_work = held_at_work or bool(held_at)
    clean = _check_input(spec, data, len(kept) + len(files), today, held_at_work=held_at_work)
    version = EvidenceVersion(version=evidence.current_version + 1, created_by_id=actor.id,
                              **_version_fields(clean))
    version.original_held_at = held_at
    for position, old in enumerate(kept):
        version.files.append(EvidenceFile(
            sha256=old.sha256, filename=old.filename, media_type=old.media_type,
            category=old.category, size=old.size, position=position, preview=old.preview))
    evidence.versions.append(version)
    _attach(session, version, files, start=len(kept))
    evidence.current_version = version.version
    evidence.updated_at = utcnow()
    session.flush()
    from portfolio.assessment.services import invalidate_for_evidence

    invalidate_for_evidence(session, evidence, previous.version, version.version, actor=actor)
    record_event(session, action="evidence.version", subject_type="evidence",
                 subject_id=evidence.id, actor=actor,
                 actor_role=_role_of(actor, evidence.enrolment),
                 learner_id=evidence.enrolment.learner_id,
                 detail={"from": previous.version, "to": version.version,
                         "title": clean.title, "note": clean.change_note,
                         "files": [f.sha256 for f in version.files]})
    return version


def check_submittable(evidence: Evidence, *, actor: User) -> None:
    """Refuse a submission that could not happen, before anyone is asked to sign for it."""
    _check_editable(actor, evidence, None)
    if not live_mappings(evidence, "learner") and not live_mappings(evidence, "assessor"):
        raise InvalidTransition("Map this evidence to at least one criterion before you "
                                "submit it.")
    from portfolio.evidence.redaction import check_clean

    check_clean(evidence)


def submit_evidence(session: Session, evidence: Evidence, *, actor: User) -> None:
    """Send a draft (or a revised referral) to the assessor.

    :raises InvalidTransition: already submitted, or not mapped to any criterion.
    """
    check_submittable(evidence, actor=actor)
    states.move(evidence, "submit")
    evidence.submitted_at = evidence.updated_at = utcnow()
    record_event(session, action="evidence.submit", subject_type="evidence",
                 subject_id=evidence.id, actor=actor,
                 actor_role=_role_of(actor, evidence.enrolment),
                 learner_id=evidence.enrolment.learner_id,
                 detail={"version": evidence.current_version})


def withdraw_evidence(session: Session, evidence: Evidence, *, actor: User, reason: str) -> None:
    """Withdraw a draft or referred item; it stays in the history but counts for nothing."""
    _check_editable(actor, evidence, None)
    reason = " ".join((reason or "").split())[:300]
    states.move(evidence, "withdraw")
    evidence.updated_at = utcnow()
    session.flush()
    from portfolio.assessment.services import invalidate_for_evidence

    # A referred item may already carry decisions: withdrawing it must end them.
    invalidate_for_evidence(session, evidence, evidence.current_version, None, actor=actor)
    record_event(session, action="evidence.withdraw", subject_type="evidence",
                 subject_id=evidence.id, actor=actor,
                 actor_role=_role_of(actor, evidence.enrolment),
                 learner_id=evidence.enrolment.learner_id,
                 detail={"version": evidence.current_version, "reason": reason})


@dataclass(frozen=True)
class MappingInput:
    criterion_id: int
    rationale: str = ""
    location: str = ""


def _check_mappable(actor: User, evidence: Evidence) -> None:
    if not can_map_evidence(actor, evidence.enrolment, evidence.created_by_id):
        raise PermissionDenied("You cannot change the mapping of this evidence.")
    if evidence.status in (states.WITHDRAWN, states.ACCEPTED):
        raise InvalidTransition(f"This evidence is {evidence.status}: its mapping is fixed.")


def mapping_source(actor: User, evidence: Evidence) -> str:
    """Return whose mapping the actor edits: the learner's, or the assessor's final one."""
    return "learner" if evidence.enrolment.learner_id == actor.id else "assessor"


def live_mappings(evidence: Evidence, source: str) -> dict[int, EvidenceMapping]:
    """Return the live mappings of one source, by criterion id."""
    return {m.criterion_id: m for m in evidence.mappings
            if m.removed_at is None and m.source == source}


def set_mappings(session: Session, evidence: Evidence, *, actor: User,
                 wanted: list[MappingInput]) -> tuple[list[str], list[str]]:
    """Make the actor's live mappings exactly `wanted`; return the numbers added and removed."""
    _check_mappable(actor, evidence)
    source = mapping_source(actor, evidence)
    criteria = {c.id: c for c in session.scalars(
        select(Criterion).where(Criterion.unit_id == evidence.enrolment.unit_id,
                                Criterion.is_retired.is_(False)))}
    wanted_by_id: dict[int, MappingInput] = {}
    for item in wanted:
        if item.criterion_id not in criteria:
            raise ValidationFailed("That criterion is not part of this unit.", field="criteria")
        if len(item.rationale) > 500 or len(item.location) > 120:
            raise ValidationFailed("Keep the reason under 500 and the location under 120 "
                                   "characters.", field="criteria")
        wanted_by_id[item.criterion_id] = item
    live = live_mappings(evidence, source)
    now = utcnow()
    added, removed, changed = [], [], []
    for criterion_id, mapping in live.items():
        if criterion_id not in wanted_by_id:
            mapping.removed_at, mapping.removed_by_id = now, actor.id
            removed.append(criteria[criterion_id].number if criterion_id in criteria else "?")
    # Removals first, so the "one live mapping" index never sees two at once.
    session.flush()
    for criterion_id, item in wanted_by_id.items():
        rationale, location = item.rationale.strip(), item.location.strip()
        current = live.get(criterion_id)
        if current is not None:
            if (current.rationale, current.location) != (rationale, location):
                current.rationale, current.location = rationale, location
                changed.append(criteria[criterion_id].number)
            continue
        evidence.mappings.append(EvidenceMapping(
            criterion_id=criterion_id, criterion_version=criteria[criterion_id].version,
            rationale=rationale, location=location, created_by_id=actor.id, created_at=now,
            source=source))
        added.append(criteria[criterion_id].number)
    if source == "assessor":
        evidence.assessor_mapped_at = now
    session.flush()
    if added or removed or changed:
        evidence.updated_at = now
        record_event(session, action="evidence.mapping", subject_type="evidence",
                     subject_id=evidence.id, actor=actor,
                     actor_role=_role_of(actor, evidence.enrolment),
                     learner_id=evidence.enrolment.learner_id,
                     detail={"source": source, "added": sorted(added),
                             "removed": sorted(removed), "changed": sorted(changed)})
    return sorted(added), sorted(removed)


def map_to_criterion(session: Session, evidence: Evidence, *, actor: User,
                     mapping: MappingInput) -> bool:
    """Add (or update) one mapping, leaving the others; return True if it is new."""
    live = live_mappings(evidence, mapping_source(actor, evidence))
    keep = [MappingInput(m.criterion_id, m.rationale, m.location)
            for m in live.values() if m.criterion_id != mapping.criterion_id]
    added, _removed = set_mappings(session, evidence, actor=actor, wanted=[*keep, mapping])
    return bool(added)


def unmap_from_criterion(session: Session, evidence: Evidence, *, actor: User,
                         criterion_id: int) -> bool:
    """Remove one mapping; return True if there was one."""
    live = live_mappings(evidence, mapping_source(actor, evidence))
    keep = [MappingInput(m.criterion_id, m.rationale, m.location)
            for m in live.values() if m.criterion_id != criterion_id]
    _added, removed = set_mappings(session, evidence, actor=actor, wanted=keep)
    return bool(removed)
