"""Snapshots: the portfolio frozen as it was when a sample started, bound by its SHA-256."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.assessment.services import (
    unit_cosign,
    unit_declaration,
)
from portfolio.assessment.signing import (
    live_decisions,
    sha256_of,
    verify_signature,
)
from portfolio.db import utcnow
from portfolio.evidence.kinds import KINDS
from portfolio.models import (
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceMapping,
    EvidenceReview,
    EvidenceVersion,
    IqaSample,
    Signature,
)


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _signature_entry(session: Session, signature: Signature) -> dict[str, Any]:
    verdict = verify_signature(session, signature)
    return {"id": signature.id, "purpose": signature.purpose,
            "signer": signature.signer.full_name, "signer_role": signature.signer_role,
            "typed_name": signature.typed_name, "statement": signature.statement,
            "signed_at": _when(signature.signed_at), "content_hash": signature.content_hash,
            "state": verdict.state, "state_reason": verdict.reason}


def _evidence_entries(session: Session, decision: CriterionDecision) -> list[dict[str, Any]]:
    """The evidence a decision cites, at the versions cited, with mappings and reviews."""
    evidence_items = []
    for cited in decision.evidence:
        evidence = session.get(Evidence, cited["evidence_id"])
        version = session.scalar(select(EvidenceVersion).where(
            EvidenceVersion.evidence_id == cited["evidence_id"],
            EvidenceVersion.version == cited["version"]))
        if evidence is None or version is None:
            continue
        kind = KINDS[evidence.kind]
        mappings = session.execute(
            select(EvidenceMapping.source, EvidenceMapping.rationale, EvidenceMapping.location,
                   EvidenceMapping.criterion_id)
            .where(EvidenceMapping.evidence_id == evidence.id,
                   EvidenceMapping.removed_at.is_(None))
            .order_by(EvidenceMapping.criterion_id, EvidenceMapping.source)).all()
        numbers = dict(session.execute(select(Criterion.id, Criterion.number).where(
            Criterion.id.in_({m.criterion_id for m in mappings} or {0}))).all())
        reviews = session.scalars(select(EvidenceReview).where(
            EvidenceReview.evidence_id == evidence.id,
            EvidenceReview.version == version.version).order_by(EvidenceReview.id))
        evidence_items.append({
            "evidence_id": evidence.id, "version": version.version,
            "current_version": evidence.current_version, "status": evidence.status,
            "kind": evidence.kind, "kind_label": kind.label,
            "method": kind.method_for(version.details or {}, version.is_simulated),
            "title": version.title, "activity_on": _when(version.activity_on),
            "activity_place": version.activity_place, "body_md": version.body_md,
            "details": version.details or {}, "is_simulated": version.is_simulated,
            "files": [{"filename": f.filename, "sha256": f.sha256, "size": f.size,
                       "media_type": f.media_type} for f in version.files],
            "mappings": [{"criterion": numbers.get(m.criterion_id, "?"), "source": m.source,
                          "rationale": m.rationale, "location": m.location} for m in mappings],
            "reviews": [{"outcome": r.outcome, "reviewer": r.reviewer.full_name,
                         "at": _when(r.created_at), "feedback_md": r.feedback_md,
                         "varcs": r.varcs} for r in reviews],
        })
    return evidence_items


def _decision_signatures(session: Session, decision: CriterionDecision) -> list[dict[str, Any]]:
    signatures = [session.get(Signature, decision.signature_id)]
    if decision.countersignature_id:
        signatures.append(session.get(Signature, decision.countersignature_id))
    return [_signature_entry(session, s) for s in signatures if s is not None]


def _enrolment_entry(enrolment: Enrolment) -> dict[str, Any]:
    return {"id": enrolment.id, "learner": enrolment.learner.full_name,
            "employer": enrolment.employer, "workplace": enrolment.workplace,
            "assessor": enrolment.assessor.full_name,
            "unit": enrolment.unit.reference, "unit_title": enrolment.unit.title,
            "unit_version": enrolment.unit.version, "status": enrolment.status}


def _decision_entry(decision: CriterionDecision) -> dict[str, Any]:
    return {"id": decision.id, "criterion": decision.criterion.number,
            "criterion_text": decision.criterion.text, "status": decision.status,
            "decided_by": decision.decided_by.full_name,
            "decided_at": _when(decision.decided_at), "note_md": decision.note_md,
            "needs_countersignature": bool(decision.needs_countersignature),
            "countersigned_by": (decision.countersigned_by.full_name
                                 if decision.countersigned_by else None)}


def build_snapshot(session: Session, decision: CriterionDecision) -> dict[str, Any]:
    """Everything the IQA judges, as it is now, in one canonical JSON-ready dict."""
    enrolment = decision.enrolment
    others = session.scalars(select(CriterionDecision).where(
        CriterionDecision.enrolment_id == enrolment.id).order_by(CriterionDecision.id))
    return {
        "taken_at": _when(utcnow()),
        "enrolment": _enrolment_entry(enrolment),
        "decision": _decision_entry(decision),
        "evidence": _evidence_entries(session, decision),
        "signatures": _decision_signatures(session, decision),
        "other_decisions": [{"criterion": d.criterion.number, "status": d.status,
                             "decided_by": d.decided_by.full_name,
                             "decided_at": _when(d.decided_at)}
                            for d in others if d.id != decision.id],
    }


def build_unit_snapshot(session: Session, enrolment: Enrolment,
                        signoff: Signature) -> dict[str, Any]:
    """The whole portfolio behind a unit sign-off, as it is now: the sign-off and the learner's
    declaration and co-signature, then every standing decision with its evidence (at the
    versions cited, with mappings and reviews) and signatures, in criterion order."""
    decisions = sorted(live_decisions(session, enrolment.id),
                       key=lambda d: (d.criterion_id, d.id))
    unit_signatures = [signoff] + [s for s in (unit_declaration(session, enrolment),
                                               unit_cosign(session, enrolment)) if s is not None]
    return {
        "scope": "unit",
        "taken_at": _when(utcnow()),
        "enrolment": _enrolment_entry(enrolment),
        "signoff": {"id": signoff.id, "signed_by": signoff.signer.full_name,
                    "signed_at": _when(signoff.signed_at)},
        "signatures": [_signature_entry(session, s) for s in unit_signatures],
        "decisions": [{"decision": _decision_entry(d),
                       "evidence": _evidence_entries(session, d),
                       "signatures": _decision_signatures(session, d)} for d in decisions],
    }


def snapshot_intact(sample: IqaSample) -> bool:
    return sha256_of(sample.snapshot) == sample.snapshot_sha256
