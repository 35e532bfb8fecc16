"""Gather one portfolio as plain data for the PDF (no ORM objects reach the template)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.assessment.queries import list_decisions, list_reviews
from portfolio.assessment.signing import verify_all
from portfolio.audit import chain_head, current_checkpoint
from portfolio.criteria.queries import get_unit_view
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.parsing import SAFE_INLINE_IMAGE_TYPES, Preview
from portfolio.evidence.parsing.rendering import HEIF_MEDIA_TYPES
from portfolio.evidence.services import current_version
from portfolio.models import (
    AuditEvent,
    CriterionDecision,
    Enrolment,
    Evidence,
    Export,
    Signature,
    User,
    WitnessRequest,
    WitnessStatus,
)
from portfolio.sampling.services import sample_rows_for_export
from portfolio.witness.services import paper_testimonies


@dataclass
class FileItem:
    id: int
    filename: str
    media_type: str
    sha256: str
    size: int
    inline_image: bool
    preview: Preview


def _file_item(f: Any) -> FileItem:
    preview = Preview.from_json(f.preview)
    # A HEIC/HEIF photo that could be read when uploaded prints from its JPEG print copy.
    printable = f.media_type in SAFE_INLINE_IMAGE_TYPES or (
        f.media_type in HEIF_MEDIA_TYPES and preview.kind == "image")
    return FileItem(f.id, f.filename, f.media_type, f.sha256, f.size, printable, preview)


@dataclass
class EvidenceItem:
    id: int
    anchor: str
    kind_label: str
    title: str
    status: str
    version: int
    activity_on: date | None
    activity_place: str
    body_md: str
    details: list[tuple[str, str]]
    files: list[FileItem]
    reviews: list[dict[str, Any]]
    criteria: list[str]


@dataclass
class PortfolioContent:
    generated_at: datetime
    learner: str
    centre: str
    qualification: str
    unit: Any
    assessor: str
    iqa: str
    employer: str
    workplace: str
    start_on: date
    planned_end_on: date
    status: str
    coverage: Any
    decisions: list[dict[str, Any]]
    signatures: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    evidence: list[EvidenceItem]
    witnesses: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    audit_head: str
    verify_url: str
    manifest: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)  # IQA sample records
    audit_checkpoint: dict[str, Any] = field(default_factory=dict)  # sealed chain head
    # Testimonies recorded on paper and added as evidence: the witness signed the form, not
    # the app, so the list names them with the evidence item that holds the scan.
    paper_witnesses: list[Any] = field(default_factory=list)

    @property
    def hash_rows(self) -> list[dict[str, str]]:
        """Every file, signature and witness record with its SHA-256, for the certificate."""
        rows = [{"what": f"E{e.id} v{e.version}", "name": f.filename, "digest": f.sha256}
                for e in self.evidence for f in e.files]
        rows += [{"what": f"Signature #{s['id']}", "name": s["purpose"].replace("_", " "),
                  "digest": s["content_hash"]} for s in self.signatures]
        rows += [{"what": "Witness", "name": w["name"], "digest": w["content_hash"]}
                 for w in self.witnesses]
        return rows


def enrolment_events(session: Session, enrolment: Enrolment) -> list[AuditEvent]:
    """The audit events about this enrolment and what belongs to it, oldest first.

    Events carry the learner but not the enrolment, so events about the learner's other units,
    and about their account (sign-ins, passwords), are left out by subject.
    """
    def ids(column: Any, owner: Any) -> set[str]:
        return {str(i) for i in session.scalars(select(column).where(owner == enrolment.id))}

    owned = {
        "enrolment": {str(enrolment.id)},
        "evidence": ids(Evidence.id, Evidence.enrolment_id),
        "decision": ids(CriterionDecision.id, CriterionDecision.enrolment_id),
        "signature": ids(Signature.id, Signature.enrolment_id),
        "witness_request": ids(WitnessRequest.id, WitnessRequest.enrolment_id),
        "export": ids(Export.id, Export.enrolment_id),
    }
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.learner_id == enrolment.learner_id).order_by(AuditEvent.seq))
    return [e for e in events
            if e.subject_id in owned.get(e.subject_type, ())
            or (e.detail or {}).get("enrolment_id") == enrolment.id]


def gather(session: Session, enrolment: Enrolment, *, now: datetime, verify_url: str,
           public_id: str) -> PortfolioContent:
    """Collect everything the PDF shows, in the order it shows it."""
    unit = get_unit_view(session, enrolment.unit_id)
    coverage = compute_coverage(session, enrolment, now.date())
    decisions = list_decisions(session, enrolment.id)
    live = {d.criterion_id: d for d in decisions if d.status in ("met",
                                                                 "awaiting_countersignature")}
    items = list(session.scalars(select(Evidence).where(
        Evidence.enrolment_id == enrolment.id, Evidence.status != "withdrawn")
        .order_by(Evidence.id)))
    evidence: list[EvidenceItem] = []
    for item in items:
        version = current_version(item)
        kind = KINDS[item.kind]
        details = [(spec.label, ("Yes" if version.details.get(spec.name) else "No")
                    if spec.type == "checkbox" else str(version.details.get(spec.name) or ""))
                   for spec in kind.details if version.details.get(spec.name) not in (None, "")]
        evidence.append(EvidenceItem(
            id=item.id, anchor=f"ev-{item.id}", kind_label=kind.label, title=version.title,
            status=item.status, version=version.version, activity_on=version.activity_on,
            activity_place=version.activity_place,
            body_md=(version.body_md if version.removed_at is None else
                     f"*Its text and files were removed on {version.removed_at:%d %B %Y} under "
                     "the centre's retention policy. The record of its assessment is kept.*"),
            details=details,
            files=([_file_item(f) for f in version.files] if version.removed_at is None
                   else []),
            reviews=[{"outcome": r.outcome, "by": r.reviewer.full_name,
                      "at": r.created_at, "feedback_md": r.feedback_md, "varcs": r.varcs}
                     for r in list_reviews(session, item.id)],
            criteria=sorted({m.criterion.number for m in item.mappings if m.removed_at is None},
                            key=lambda n: [int(p) for p in n.split(".")])))
    anchors = {e.id: e.anchor for e in evidence}
    titles = {e.id: e.title for e in evidence}
    locations = []
    for c in coverage.criteria:
        decision = live.get(c.criterion_id)
        relied = ([i["evidence_id"] for i in decision.evidence] if decision
                  else [i.evidence_id for i in c.items if i.counts])
        where = {i.evidence_id: i.location for i in c.items}
        locations.append({"number": c.number, "text": c.text, "status": c.status,
                          "evidence": [{"anchor": anchors[e], "title": titles[e],
                                        "location": where.get(e, "")}
                                       for e in relied if e in anchors]})
    verdicts = {v.signature_id: v for v in verify_all(session, [enrolment.id])}
    signatures = [{"id": s.id, "purpose": s.purpose, "typed_name": s.typed_name,
                   "role": s.signer_role, "statement": s.statement, "signed_at": s.signed_at,
                   "content_hash": s.content_hash, "state": verdicts[s.id].state,
                   "reason": verdicts[s.id].reason}
                  for s in session.scalars(select(Signature).where(
                      Signature.enrolment_id == enrolment.id).order_by(Signature.id))]
    witnesses = [{"name": w.witness_name, "role": w.witness_role,
                  "organisation": w.organisation,
                  "relationship": w.declared_relationship or w.relationship,
                  "expert": w.is_expert, "signed_at": w.signed_at,
                  "content_hash": w.content_hash}
                 for w in session.scalars(select(WitnessRequest).where(
                     WitnessRequest.enrolment_id == enrolment.id,
                     WitnessRequest.status == WitnessStatus.SIGNED).order_by(WitnessRequest.id))]
    actors = {u.id: u.full_name for u in session.scalars(select(User))}
    audit: list[dict[str, Any]] = [
             {"seq": e.seq, "at": e.at, "who": actors.get(e.actor_id or 0, "System"),
              "role": e.actor_role or "", "action": e.action,
              "subject": f"{e.subject_type} #{e.subject_id}", "hash": e.hash}
             for e in enrolment_events(session, enrolment)]
    head = chain_head(session)
    checkpoint = current_checkpoint(session).as_dict()
    content = PortfolioContent(
        generated_at=now, learner=enrolment.learner.full_name,
        centre=enrolment.learner.centre.name, qualification=unit.qualification, unit=unit,
        assessor=enrolment.assessor.full_name,
        iqa=enrolment.iqa.full_name if enrolment.iqa else "Not assigned",
        employer=enrolment.employer, workplace=enrolment.workplace,
        start_on=enrolment.start_on, planned_end_on=enrolment.planned_end_on,
        status=enrolment.status, coverage=coverage,
        decisions=[{"number": d.criterion.number, "status": d.status,
                    "by": d.decided_by.full_name, "at": d.decided_at,
                    "countersigned_by": d.countersigned_by.full_name
                    if d.countersigned_by else None} for d in decisions],
        signatures=signatures, locations=locations, evidence=evidence, witnesses=witnesses,
        paper_witnesses=paper_testimonies(session, enrolment),
        samples=sample_rows_for_export(session, enrolment.id),
        audit=audit, audit_head=head, verify_url=verify_url, audit_checkpoint=checkpoint)
    content.manifest = {
        "format": "portfolio-export-manifest", "version": 1, "public_id": public_id,
        "generated_at": now.isoformat(), "enrolment_id": enrolment.id,
        "learner": content.learner, "unit": unit.reference, "unit_version": unit.version,
        "evidence": [{"evidence_id": e.id, "version": e.version, "status": e.status,
                      "files": [f.sha256 for f in e.files]} for e in evidence],
        "signatures": [{"signature_id": s["id"], "content_hash": s["content_hash"]}
                       for s in signatures],
        "witnesses": [w["content_hash"] for w in witnesses],
        "audit_head": head,
        # The chain's head, sealed: `portfolio audit verify --pdf FILE` checks the trail
        # against it, wherever the PDF has travelled since.
        "audit_checkpoint": checkpoint,
        "learner_last_event": max((a["seq"] for a in audit
                                   if not a["action"].startswith("export.")), default=0),
    }
    return content
