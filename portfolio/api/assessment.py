"""API v1 routes for reviews, decisions, declarations, signatures and their verification."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request
from sqlalchemy import select

from portfolio import db
from portfolio.api.evidence import evidence_json
from portfolio.api.inputs import json_object, keyset_page, paged, whole_number
from portfolio.api.views import bp
from portfolio.assessment import services
from portfolio.assessment.queries import list_decisions
from portfolio.assessment.signing import verify_all, verify_signature
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import NotFound, ValidationFailed
from portfolio.evidence.queries import get_evidence
from portfolio.ids import parse_id, parse_ids
from portfolio.models import Criterion, CriterionDecision, Signature
from portfolio.security import client_address


def _limits() -> dict[str, int]:
    return {"max_failures": int(current_app.config["LOGIN_MAX_FAILURES"]),
            "lockout_minutes": int(current_app.config["LOGIN_LOCKOUT_MINUTES"])}


def _body() -> dict[str, Any]:
    return json_object()


def _confirmation(body: dict[str, Any]) -> services.SignerConfirmation:
    return services.SignerConfirmation(password=str(body.get("password", "")),
                                       typed_name=str(body.get("typed_name", "")),
                                       client=client_address())


def _commit_then(session: Any, action: Any) -> Any:
    """Run a signing action; keep a wrong-password attempt even when the action is refused."""
    try:
        result = action()
    except ValidationFailed:
        session.commit()
        raise
    session.commit()
    return result


def signature_json(signature: Signature, verdict: Any) -> dict[str, Any]:
    """Return a signature with its verification verdict."""
    return {"id": signature.id, "purpose": signature.purpose,
            "subject_type": signature.subject_type, "subject_id": signature.subject_id,
            "signer": {"id": signature.signer_id, "role": signature.signer_role,
                       "typed_name": signature.typed_name},
            "statement": signature.statement, "signed_at": signature.signed_at.isoformat(),
            "content_hash": signature.content_hash,
            "verification": {"state": verdict.state, "reason": verdict.reason}}


def decision_json(decision: CriterionDecision) -> dict[str, Any]:
    """Return a criterion decision."""
    return {"id": decision.id, "criterion_id": decision.criterion_id,
            "number": decision.criterion.number, "status": decision.status,
            "evidence": decision.evidence, "note_md": decision.note_md,
            "decided_by": decision.decided_by_id, "decided_at": decision.decided_at.isoformat(),
            "signature_id": decision.signature_id,
            "countersigned_by": decision.countersigned_by_id,
            "ended_reason": decision.ended_reason}


@bp.post("/evidence/<int:evidence_id>/review")
def evidence_review(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    body = _body()
    varcs = body.get("varcs") or {}
    if not isinstance(varcs, dict):
        raise ValidationFailed("varcs is an object of true/false values.", field="varcs")
    services.review_evidence(s, evidence, actor=g.api_user, outcome=str(body.get("outcome", "")),
                             feedback_md=str(body.get("feedback_md", "")), varcs=varcs,
                             expected_version=whole_number(
                                 body.get("expected_version"), "expected_version",
                                 "Send expected_version: the version you reviewed."))
    s.commit()
    return jsonify(evidence_json(evidence))


@bp.post("/evidence/<int:evidence_id>/declaration")
def evidence_declare_submit(evidence_id: int) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    body = json_object(optional=True)
    _commit_then(s, lambda: services.submit_with_declaration(
        s, evidence, actor=g.api_user, confirmation=_confirmation(body), **_limits()))
    return jsonify(evidence_json(evidence))


@bp.get("/enrolments/<int:enrolment_id>/decisions")
def decisions_list(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    items, following = keyset_page(list_decisions(s, enrolment.id))
    return paged([decision_json(d) for d in items], following)


@bp.post("/enrolments/<int:enrolment_id>/decisions")
def decisions_create(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    body = _body()
    criterion_id = parse_id(body.get("criterion_id"))
    criterion = s.get(Criterion, criterion_id) if criterion_id is not None else None
    if criterion is None or criterion.unit_id != enrolment.unit_id:
        raise ValidationFailed("Send the criterion_id of a criterion of this unit.",
                               field="criterion_id")
    ids = body.get("evidence_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and parse_id(i) for i in ids):
        raise ValidationFailed("evidence_ids is a list of evidence ids.", field="evidence_ids")
    decision = _commit_then(s, lambda: services.decide_criterion(
        s, enrolment, criterion, actor=g.api_user, evidence_ids=ids,
        note_md=str(body.get("note_md", "")), confirmation=_confirmation(body),
        expected_state=str(body.get("expected_state", "")), **_limits()))
    response = jsonify(decision_json(decision))
    response.status_code = 201
    return response


@bp.get("/enrolments/<int:enrolment_id>/decision-state")
def decision_state(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    raw = request.args.get("evidence_ids", "")
    ids = parse_ids(raw.split(","))
    return jsonify({"expected_state": services.decision_evidence_state(s, enrolment, ids)})


@bp.post("/decisions/<int:decision_id>/countersign")
def decision_countersign(decision_id: int) -> Any:
    s = db.session()
    decision = s.get(CriterionDecision, decision_id)
    if decision is None:
        raise NotFound("No such decision.")
    if decision.enrolment.learner.centre_id != g.api_user.centre_id:
        raise NotFound("No such decision.")  # other centres' ids look like missing ones
    body = _body()
    _commit_then(s, lambda: services.countersign_decision(
        s, decision, actor=g.api_user, confirmation=_confirmation(body), **_limits()))
    return jsonify(decision_json(decision))


def _sign_enrolment(enrolment_id: int, action: Any) -> Any:
    """Run one of the unit-level signing services; answer 201 with the verified signature."""
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    signature = _commit_then(s, lambda: action(
        s, enrolment, actor=g.api_user, confirmation=_confirmation(_body()), **_limits()))
    response = jsonify(signature_json(signature, verify_signature(s, signature)))
    response.status_code = 201
    return response


@bp.post("/enrolments/<int:enrolment_id>/declaration")
def unit_declare(enrolment_id: int) -> Any:
    return _sign_enrolment(enrolment_id, services.sign_unit_declaration)


@bp.post("/enrolments/<int:enrolment_id>/sign-off")
def unit_sign_off(enrolment_id: int) -> Any:
    return _sign_enrolment(enrolment_id, services.sign_off_unit)


@bp.post("/enrolments/<int:enrolment_id>/cosign")
def unit_cosign(enrolment_id: int) -> Any:
    return _sign_enrolment(enrolment_id, services.cosign_unit)


@bp.get("/enrolments/<int:enrolment_id>/signatures")
def signatures_list(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    verdicts = {v.signature_id: v for v in verify_all(s, [enrolment.id])}
    signatures = s.scalars(select(Signature).where(Signature.enrolment_id == enrolment.id)
                           .order_by(Signature.id))
    page, following = keyset_page(list(signatures))
    # The summary counts every signature of the enrolment, whichever page this is.
    summary = {state: sum(1 for v in verdicts.values() if v.state == state)
               for state in ("valid", "invalidated", "broken")}
    return paged([signature_json(sig, verdicts[sig.id]) for sig in page], following,
                 summary=summary)
