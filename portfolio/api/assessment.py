"""API v1 routes for reviews, decisions, declarations, signatures and their verification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, g, jsonify, request
from sqlalchemy import select

from portfolio import db
from portfolio.api import schemas
from portfolio.api.evidence import evidence_json
from portfolio.api.inputs import keyset_page, paged
from portfolio.api.openapi import BAD_PAGE, CHANGE, PAGE_PARAMS, SIGN, operation
from portfolio.api.views import api_loads, bp
from portfolio.assessment import services
from portfolio.assessment.queries import get_centre_decision, list_decisions
from portfolio.assessment.signing import verify_all, verify_signature
from portfolio.enrolments.queries import get_enrolment
from portfolio.errors import ValidationFailed
from portfolio.evidence.queries import get_evidence
from portfolio.ids import parse_ids
from portfolio.models import Criterion, CriterionDecision, Signature
from portfolio.security import client_address


def _limits() -> dict[str, int]:
    return {"max_failures": int(current_app.config["LOGIN_MAX_FAILURES"]),
            "lockout_minutes": int(current_app.config["LOGIN_LOCKOUT_MINUTES"])}


def _confirmation(body: schemas.SignRequest) -> services.SignerConfirmation:
    return services.SignerConfirmation(password=body.password, typed_name=body.typed_name,
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


@operation(bp, "POST", "/evidence/<int:evidence_id>/review",
           summary="Accept or refer back (assessor)", errors=[CHANGE],
           body=schemas.ReviewRequest, ok=("200", schemas.Evidence, "Reviewed"))
def evidence_review(evidence_id: int, read: Callable[[], schemas.ReviewRequest]) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    body = read()
    services.review_evidence(s, evidence, actor=g.api_user, outcome=body.outcome,
                             feedback_md=body.feedback_md, varcs=body.varcs.model_dump(),
                             expected_version=body.expected_version)
    s.commit()
    return jsonify(evidence_json(evidence))


@operation(bp, "POST", "/evidence/<int:evidence_id>/declaration",
           summary="Submit, signing the learner's declaration of authenticity over this version",
           errors=[SIGN], body=schemas.SignRequest, ok=("200", schemas.Evidence, "Signed"))
def evidence_declare_submit(evidence_id: int, read: Callable[[], schemas.SignRequest]) -> Any:
    s = db.session()
    evidence = get_evidence(s, evidence_id, g.api_user)
    _commit_then(s, lambda: services.submit_with_declaration(
        s, evidence, actor=g.api_user, confirmation=_confirmation(read()), **_limits()))
    return jsonify(evidence_json(evidence))


@operation(bp, "GET", "/enrolments/<int:enrolment_id>/decisions",
           summary="Criterion decisions, live and ended", query=PAGE_PARAMS, errors=[BAD_PAGE],
           ok=("200", schemas.DecisionList, "Decisions, in id order"))
def decisions_list(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    items, following = keyset_page(list_decisions(s, enrolment.id))
    return paged([decision_json(d) for d in items], following)


@operation(bp, "POST", "/enrolments/<int:enrolment_id>/decisions",
           summary="Sign a criterion as met (assessor)", errors=[SIGN],
           body=schemas.DecisionRequest, ok=("201", schemas.Decision, "Signed"))
def decisions_create(enrolment_id: int, read: Callable[[], schemas.DecisionRequest]) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    body = read()
    criterion = s.get(Criterion, body.criterion_id)
    if criterion is None or criterion.unit_id != enrolment.unit_id:
        raise ValidationFailed("Send the criterion_id of a criterion of this unit.",
                               field="criterion_id")
    decision = _commit_then(s, lambda: services.decide_criterion(
        s, enrolment, criterion, actor=g.api_user, evidence_ids=body.evidence_ids,
        note_md=body.note_md, confirmation=_confirmation(body),
        expected_state=body.expected_state, **_limits()))
    response = jsonify(decision_json(decision))
    response.status_code = 201
    return response


@operation(bp, "GET", "/enrolments/<int:enrolment_id>/decision-state",
           summary="The expected_state token for deciding on the given evidence",
           query=[{"name": "evidence_ids", "in": "query", "required": False,
                   "schema": {"type": "string"},
                   "description": "Comma-separated ids; none means no evidence"}],
           ok=("200", schemas.DecisionState, "Token"))
def decision_state(enrolment_id: int) -> Any:
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    raw = request.args.get("evidence_ids", "")
    ids = parse_ids(raw.split(","))
    return jsonify({"expected_state": services.decision_evidence_state(s, enrolment, ids)})


@operation(bp, "POST", "/decisions/<int:decision_id>/countersign",
           summary="Countersign a trainee's decision (qualified assessor)", errors=[SIGN],
           body=schemas.SignRequest, ok=("200", schemas.Decision, "Signed"))
@api_loads(decision=get_centre_decision)
def decision_countersign(decision: CriterionDecision,
                         read: Callable[[], schemas.SignRequest]) -> Any:
    s = db.session()
    _commit_then(s, lambda: services.countersign_decision(
        s, decision, actor=g.api_user, confirmation=_confirmation(read()), **_limits()))
    return jsonify(decision_json(decision))


def _sign_enrolment(enrolment_id: int, read: Callable[[], schemas.SignRequest],
                    action: Any) -> Any:
    """Run one of the unit-level signing services; answer 201 with the verified signature."""
    s = db.session()
    enrolment = get_enrolment(s, enrolment_id, g.api_user)
    signature = _commit_then(s, lambda: action(
        s, enrolment, actor=g.api_user, confirmation=_confirmation(read()), **_limits()))
    response = jsonify(signature_json(signature, verify_signature(s, signature)))
    response.status_code = 201
    return response


def _signing(rule: str, summary: str) -> Any:
    return operation(bp, "POST", rule, summary=summary, errors=[SIGN], body=schemas.SignRequest,
                     ok=("201", schemas.Signature, "Signed"))


@_signing("/enrolments/<int:enrolment_id>/declaration",
          "The learner's unit declaration of authenticity")
def unit_declare(enrolment_id: int, read: Callable[[], schemas.SignRequest]) -> Any:
    return _sign_enrolment(enrolment_id, read, services.sign_unit_declaration)


@_signing("/enrolments/<int:enrolment_id>/sign-off", "The assessor signs the unit off")
def unit_sign_off(enrolment_id: int, read: Callable[[], schemas.SignRequest]) -> Any:
    return _sign_enrolment(enrolment_id, read, services.sign_off_unit)


@_signing("/enrolments/<int:enrolment_id>/cosign", "The learner co-signs the sign-off")
def unit_cosign(enrolment_id: int, read: Callable[[], schemas.SignRequest]) -> Any:
    return _sign_enrolment(enrolment_id, read, services.cosign_unit)


@operation(bp, "GET", "/enrolments/<int:enrolment_id>/signatures",
           summary="Every signature, each verified now: valid, invalidated (why) or broken; the "
                   "summary counts all of the enrolment's signatures, whichever the page",
           query=PAGE_PARAMS, errors=[BAD_PAGE],
           ok=("200", schemas.SignatureList, "Signatures, in id order"))
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
