"""Export one learner's whole portfolio as an open bundle: a ZIP with manifest.json and files/.

The manifest (format version 1, schema in bundle-manifest-1.schema.json, described in
docs/bundle.md) holds everything needed to rebuild the portfolio elsewhere: the units and their
criteria, every evidence version, mappings, reviews, decisions, signatures (declarations are
signatures too), witness records and this learner's audit events. Files are stored once each
under files/<sha256>.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portfolio.assessment.signing import verify_all
from portfolio.audit import chain_head, record_event
from portfolio.bundle.schema import FORMAT, FORMAT_VERSION
from portfolio.db import utcnow
from portfolio.errors import PermissionDenied, Removed
from portfolio.evidence.storage import FileStore, StoredFileDamaged
from portfolio.models import (
    AuditEvent,
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceReview,
    Role,
    Signature,
    Unit,
    User,
    WitnessRequest,
)
from portfolio.seals import sealer_for

MANIFEST_NAME = "manifest.json"
CHUNK = 1024 * 1024


def iso(value: datetime | date | None) -> str | None:
    """Serialise a UTC datetime to microseconds (as seals and audit hashes do), or a date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value.isoformat()


@dataclass(frozen=True)
class BundleSummary:
    learner_email: str
    manifest_sha256: str
    enrolments: int
    evidence: int
    versions: int
    files: int
    signatures: int
    audit_events: int


def _person(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "full_name": user.full_name,
            "roles": sorted(r.value for r in user.roles), "assessor_status": user.assessor_status}


def _unit(session: Session, unit: Unit) -> dict[str, Any]:
    criteria = session.scalars(select(Criterion).where(Criterion.unit_id == unit.id)
                               .order_by(Criterion.position, Criterion.id))
    return {"reference": unit.reference, "version": unit.version, "number": unit.number,
            "title": unit.title,
            "criteria": [{"id": c.id, "number": c.number, "version": c.version, "text": c.text}
                         for c in criteria]}


def _evidence(session: Session, item: Evidence, reviews: list[EvidenceReview]
              ) -> dict[str, Any]:
    return {
        "id": item.id, "enrolment_id": item.enrolment_id, "kind": item.kind,
        "status": item.status, "current_version": item.current_version,
        "created_by_id": item.created_by_id, "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at), "submitted_at": iso(item.submitted_at),
        "assessor_mapped_at": iso(item.assessor_mapped_at),
        "versions": [{
            "version": v.version, "title": v.title, "activity_on": iso(v.activity_on),
            "activity_place": v.activity_place, "body_md": v.body_md, "details": v.details,
            "is_simulated": v.is_simulated, "personal_data_confirmed": v.personal_data_confirmed,
            "change_note": v.change_note, "created_by_id": v.created_by_id,
            "created_at": iso(v.created_at), "assessor_only": v.assessor_only,
            "redacted_from": v.redacted_from, "original_held_at": v.original_held_at,
            "files": [{"sha256": f.sha256, "filename": f.filename, "size": f.size,
                       "position": f.position} for f in v.files],
        } for v in item.versions],
        "mappings": [{
            "criterion_id": m.criterion_id, "source": m.source,
            "criterion_version": m.criterion_version, "rationale": m.rationale,
            "location": m.location, "created_by_id": m.created_by_id,
            "created_at": iso(m.created_at), "removed_at": iso(m.removed_at),
            "removed_by_id": m.removed_by_id,
        } for m in sorted(item.mappings, key=lambda m: m.id)],
        "reviews": [{
            "version": r.version, "reviewer_id": r.reviewer_id, "outcome": r.outcome,
            "feedback_md": r.feedback_md, "varcs": r.varcs, "created_at": iso(r.created_at),
        } for r in reviews],
    }


def _decision(d: CriterionDecision) -> dict[str, Any]:
    return {"id": d.id, "enrolment_id": d.enrolment_id, "criterion_id": d.criterion_id,
            "status": d.status, "evidence": d.evidence, "note_md": d.note_md,
            "decided_by_id": d.decided_by_id, "decided_at": iso(d.decided_at),
            "signature_id": d.signature_id, "needs_countersignature": d.needs_countersignature,
            "countersigned_by_id": d.countersigned_by_id,
            "countersignature_id": d.countersignature_id, "ended_at": iso(d.ended_at),
            "ended_reason": d.ended_reason}


def _signature(s: Signature, state: str) -> dict[str, Any]:
    return {"id": s.id, "enrolment_id": s.enrolment_id, "purpose": s.purpose,
            "subject_type": s.subject_type, "subject_id": s.subject_id,
            "signer_id": s.signer_id, "signer_role": s.signer_role, "typed_name": s.typed_name,
            "statement": s.statement, "signed_at": iso(s.signed_at), "content": s.content,
            "content_hash": s.content_hash, "seal": s.seal,
            "invalidated_at": iso(s.invalidated_at),
            "invalidated_reason": s.invalidated_reason, "state_at_export": state}


WITNESS_FIELDS = (
    "id", "enrolment_id", "requested_by_id", "witness_name", "witness_email", "witness_role",
    "organisation", "relationship", "is_expert", "expert_competence", "activity", "activity_on",
    "activity_place", "criterion_ids", "draft_md", "token_hash", "expires_at", "status",
    "created_at", "sent_count", "used_at", "testimony_md", "declared_relationship",
    "declared_related", "signed_name", "signed_at", "content", "content_hash", "decline_reason",
    "evidence_id", "replaced_by_id", "contact_minimised_at",
)


def _witness(w: WitnessRequest) -> dict[str, Any]:
    out = {}
    for name in WITNESS_FIELDS:
        value = getattr(w, name)
        out[name] = iso(value) if isinstance(value, date | datetime) else value
    return out


def audit_event_dict(e: AuditEvent) -> dict[str, Any]:
    """Return an audit event's hashed fields (exactly what its hash covers) and its hash."""
    return {"seq": e.seq, "at": iso(e.at), "actor_id": e.actor_id, "actor_role": e.actor_role,
            "action": e.action, "subject_type": e.subject_type, "subject_id": e.subject_id,
            "learner_id": e.learner_id, "centre_id": e.centre_id, "detail": e.detail,
            "prev_hash": e.prev_hash, "hash": e.hash}


def build_manifest(session: Session, learner: User) -> dict[str, Any]:
    """Gather everything of one learner's portfolio into a manifest (format version 1)."""
    enrolments = list(session.scalars(select(Enrolment).where(Enrolment.learner_id == learner.id)
                                      .order_by(Enrolment.id)))
    enrolment_ids = [e.id for e in enrolments]
    evidence = list(session.scalars(select(Evidence).where(
        Evidence.enrolment_id.in_(enrolment_ids)).order_by(Evidence.id)))
    reviews: dict[int, list[EvidenceReview]] = {}
    for review in session.scalars(select(EvidenceReview).where(
            EvidenceReview.evidence_id.in_([e.id for e in evidence])).order_by(EvidenceReview.id)):
        reviews.setdefault(review.evidence_id, []).append(review)
    decisions = list(session.scalars(select(CriterionDecision).where(
        CriterionDecision.enrolment_id.in_(enrolment_ids)).order_by(CriterionDecision.id)))
    # IQA outcome signatures sign the centre's quality-assurance records, which stay with the
    # centre (their audit events travel with the learner's history; a "disagree" shows in the
    # reopened decision it ended).
    signatures = list(session.scalars(select(Signature).where(
        Signature.enrolment_id.in_(enrolment_ids), Signature.purpose != "iqa_outcome")
        .order_by(Signature.id)))
    states = {v.signature_id: v.state for v in verify_all(session, enrolment_ids)}
    witnesses = list(session.scalars(select(WitnessRequest).where(
        WitnessRequest.enrolment_id.in_(enrolment_ids)).order_by(WitnessRequest.id)))
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.learner_id == learner.id)
                                  .order_by(AuditEvent.seq)))

    evidence_rows = [_evidence(session, e, reviews.get(e.id, [])) for e in evidence]
    files: dict[str, int] = {}
    for row in evidence_rows:
        for version in row["versions"]:
            for f in version["files"]:
                files[f["sha256"]] = f["size"]

    people_ids: set[int] = {learner.id}
    for e in enrolments:
        people_ids.update(i for i in (e.assessor_id, e.iqa_id) if i)
    for row in evidence_rows:
        people_ids.add(row["created_by_id"])
        people_ids.update(v["created_by_id"] for v in row["versions"])
        for m in row["mappings"]:
            people_ids.update(i for i in (m["created_by_id"], m["removed_by_id"]) if i)
        people_ids.update(r["reviewer_id"] for r in row["reviews"])
    for d in decisions:
        people_ids.update(i for i in (d.decided_by_id, d.countersigned_by_id) if i)
    people_ids.update(s.signer_id for s in signatures)
    people_ids.update(w.requested_by_id for w in witnesses)
    people_ids.update(ev.actor_id for ev in events if ev.actor_id)
    people = list(session.scalars(select(User).where(User.id.in_(people_ids)).order_by(User.id)))

    units = {e.unit_id: e.unit for e in enrolments}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": iso(utcnow()),
        "source": {"centre": learner.centre.name, "audit_chain_head": chain_head(session),
                   "audit_events_total": session.scalar(select(func.count(AuditEvent.id))) or 0,
                   # Seals can be re-checked on import only by an installation with this key.
                   "seal_key_id": sealer_for(session).key_id},
        "learner_id": learner.id,
        "people": [_person(p) for p in people],
        "units": [_unit(session, u) for _, u in sorted(units.items())],
        "enrolments": [{
            "id": e.id, "unit_reference": e.unit.reference, "unit_version": e.unit.version,
            "learner_id": e.learner_id, "assessor_id": e.assessor_id, "iqa_id": e.iqa_id,
            "start_on": iso(e.start_on), "planned_end_on": iso(e.planned_end_on),
            "employer": e.employer, "workplace": e.workplace, "status": e.status,
            "created_at": iso(e.created_at),
        } for e in enrolments],
        "files": [{"sha256": sha, "size": size} for sha, size in sorted(files.items())],
        "evidence": evidence_rows,
        "decisions": [_decision(d) for d in decisions],
        "signatures": [_signature(s, states[s.id]) for s in signatures],
        "witness_requests": [_witness(w) for w in witnesses],
        "audit_events": [audit_event_dict(ev) for ev in events],
    }


def can_export_bundle(actor: User | None, learner: User) -> bool:
    """The command line (no actor) and the learner's centre admin may export a bundle."""
    return actor is None or (actor.has_role(Role.ADMIN) and actor.centre_id == learner.centre_id)


def export_bundle(session: Session, learner: User, *, store: FileStore, out: BinaryIO,
                  actor: User | None) -> BundleSummary:
    """Write the learner's bundle (a ZIP) to `out` and record the export in the audit trail.

    :raises PermissionDenied: the actor is not an admin of the learner's centre.
    :raises FileNotFoundError: a stored file is missing from the storage folder.
    :raises StoredFileDamaged: a stored file's bytes no longer match its SHA-256.
    """
    if not can_export_bundle(actor, learner):
        raise PermissionDenied("Only an admin of the learner's centre can export a bundle.")
    if not session.scalar(select(func.count(Enrolment.id))
                          .where(Enrolment.learner_id == learner.id)):
        raise PermissionDenied(f"{learner.full_name} has no enrolment to export.")
    if session.scalar(select(func.count(Enrolment.id)).where(
            Enrolment.learner_id == learner.id, Enrolment.work_removed_at.is_not(None))):
        # Another instance could not check the signatures over work that is no longer here.
        raise Removed(f"{learner.full_name}'s work was removed under the centre's retention "
                      "policy, so no complete bundle can be made. The PDF export still shows "
                      "the record of the assessment.")
    manifest = build_manifest(session, learner)
    data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    manifest_sha = hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_NAME, data)
        for entry in manifest["files"]:
            sha = entry["sha256"]
            try:
                # Checked (streamed) before a byte goes into the bundle, then copied from the
                # same open file: a bundle never carries swapped bytes under a good name.
                source = store.open_verified(sha, route="bundle export")
            except FileNotFoundError:
                raise FileNotFoundError(f"The stored file {sha} is missing from the storage "
                                        "folder, so the bundle would be incomplete.") from None
            except StoredFileDamaged as exc:
                raise StoredFileDamaged(sha, (
                    f"The stored file {sha} is damaged in the file store (its bytes no longer "
                    "match the fingerprint taken when it was uploaded), so no bundle was made. "
                    "Restore it from a backup; `portfolio files verify` lists every damaged "
                    "file.")) from exc
            with source, archive.open(f"files/{sha}", "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
    summary = BundleSummary(
        learner_email=learner.email, manifest_sha256=manifest_sha,
        enrolments=len(manifest["enrolments"]), evidence=len(manifest["evidence"]),
        versions=sum(len(e["versions"]) for e in manifest["evidence"]),
        files=len(manifest["files"]), signatures=len(manifest["signatures"]),
        audit_events=len(manifest["audit_events"]))
    record_event(session, action="bundle.export", subject_type="user", subject_id=learner.id,
                 actor=actor, actor_role=Role.ADMIN.value if actor else None,
                 learner_id=learner.id, centre_id=learner.centre_id,
                 detail={"manifest_sha256": manifest_sha, "evidence": summary.evidence,
                         "files": summary.files, "signatures": summary.signatures,
                         "audit_events": summary.audit_events})
    return summary
