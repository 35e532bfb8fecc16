"""Assessor reviews and decisions, learner declarations, countersigning and unit sign-off.

Every signature is an authenticated act: the signer re-enters their password (throttled like
sign-in) and types their full name; the signature binds who, in which role, the exact
statement, the UTC time and a SHA-256 over exactly what was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portfolio.assessment import states as decision_states
from portfolio.assessment.signing import (
    decision_signature_ref,
    evidence_snapshot,
    live_decisions,
    make_signature,
    sha256_of,
    verify_signature,
)
from portfolio.audit import record_event
from portfolio.auth.services import check_password
from portfolio.auth.throttle import wait_phrase
from portfolio.db import rowcount, utcnow
from portfolio.enrolments import states as enrolment_states
from portfolio.errors import InvalidTransition, PermissionDenied, ValidationFailed
from portfolio.evidence import states
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.kinds import KINDS
from portfolio.evidence.redaction import check_clean
from portfolio.evidence.services import (
    MappingInput,
    check_submittable,
    current_version,
    live_mappings,
    set_mappings,
    submit_evidence,
)
from portfolio.models import (
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceReview,
    Role,
    Signature,
    User,
)
from portfolio.permissions import can_assess, can_countersign

VARCS = ("valid", "authentic", "reliable", "current", "sufficient")
VARCS_LABELS = {"valid": "Valid", "authentic": "Authentic", "reliable": "Reliable",
                "current": "Current", "sufficient": "Sufficient"}

STATEMENTS = {
    "criterion_decision": "I have assessed the evidence listed and confirm that criterion "
                          "{number} is met.",
    "countersignature": "As a qualified assessor I have reviewed this decision and the "
                        "evidence it relies on, and I countersign it.",
    "decision_return": "As a qualified assessor I have reviewed this decision and the evidence "
                       "it relies on, and I return it to the trainee assessor with my comments.",
    "unit_signoff": "I confirm that every assessment criterion of this unit is met, based on "
                    "the evidence and decisions listed, and I sign the unit off.",
    "unit_cosign": "I confirm that I have seen the assessor's decisions for this unit and "
                   "agree with the sign-off.",
    "assessor_record": "I made this record myself, from what I observed or discussed with the "
                       "learner. It is accurate, and it shows the criteria it is mapped to.",
}


@dataclass(frozen=True)
class SignerConfirmation:
    """What a person enters to sign: their password again and their full name."""
    password: str
    typed_name: str
    client: str = "unknown"


def _same_name(typed: str, actual: str) -> bool:
    return " ".join(typed.split()).casefold() == " ".join(actual.split()).casefold()


def confirm_signer(session: Session, user: User, confirmation: SignerConfirmation, *,
                   max_failures: int, lockout_minutes: int) -> str:
    """Check the password and typed name; return the name as typed.

    :raises Throttled: too many wrong passwords recently (sign-in and signing share the count).
    :raises ValidationFailed: wrong password or name.
    """
    ok = check_password(
        session, user, confirmation.password or "", client=confirmation.client,
        max_failures=max_failures, lockout_minutes=lockout_minutes,
        refusal=lambda minutes: (f"Too many wrong passwords. Try again in "
                                 f"{wait_phrase(minutes)}; nothing was signed."),
        record_as="sign:" + confirmation.client)
    if not ok:
        raise ValidationFailed("That is not your password, so nothing was signed.",
                               field="password")
    typed = " ".join((confirmation.typed_name or "").split())
    if not _same_name(typed, user.full_name):
        raise ValidationFailed(f"Type your full name exactly as it is on your account "
                               f"({user.full_name}) to sign.", field="typed_name")
    return typed


def _audit_signature(session: Session, signature: Signature, actor: User,
                     enrolment: Enrolment, **detail: Any) -> None:
    record_event(session, action=f"signature.{signature.purpose}", subject_type="signature",
                 subject_id=signature.id, actor=actor, actor_role=signature.signer_role,
                 learner_id=enrolment.learner_id,
                 detail={"content_hash": signature.content_hash, **detail})


# --- reviewing evidence ---------------------------------------------------------------------

def review_evidence(session: Session, evidence: Evidence, *, actor: User, outcome: str,
                    feedback_md: str, varcs: dict[str, bool], expected_version: int
                    ) -> EvidenceReview:
    """Accept the current version, or refer it back with feedback.

    :raises PermissionDenied: not the learner's assessor.
    :raises InvalidTransition: not submitted (or accepted, for a referral), or changed meanwhile.
    """
    enrolment = evidence.enrolment
    if not can_assess(actor, enrolment):
        raise PermissionDenied("Only the learner's assessor reviews their evidence.")
    if outcome not in ("accepted", "referred"):
        raise ValidationFailed("Accept the evidence or refer it back.", field="outcome")
    if ("accept" if outcome == "accepted" else "refer") not in states.possible(evidence):
        raise InvalidTransition(f"This evidence is {evidence.status}: it cannot be "
                                f"{outcome} now.")
    if expected_version != evidence.current_version:
        raise InvalidTransition("The learner changed this evidence after you opened it. Reload "
                                "the page and review the latest version.")
    feedback = (feedback_md or "").strip()
    if outcome == "referred" and not feedback:
        raise ValidationFailed("Say what the learner needs to change.", field="feedback_md")
    review = EvidenceReview(evidence_id=evidence.id, version=evidence.current_version,
                            reviewer_id=actor.id, outcome=outcome, feedback_md=feedback,
                            varcs={k: bool(varcs.get(k)) for k in VARCS})
    session.add(review)
    states.move(evidence, "accept" if outcome == "accepted" else "refer")
    evidence.updated_at = utcnow()
    session.flush()
    record_event(session, action=f"evidence.{outcome}", subject_type="evidence",
                 subject_id=evidence.id, actor=actor, actor_role=Role.ASSESSOR.value,
                 learner_id=enrolment.learner_id,
                 detail={"version": evidence.current_version, "varcs": review.varcs})
    return review


def review_many(session: Session, items: list[tuple[Evidence, int]], *, actor: User,
                outcome: str, feedback_md: str, varcs: dict[str, bool]) -> list[EvidenceReview]:
    """Accept or refer back several items with one comment: each gets its own review and
    audit event. All or nothing: an item changed meanwhile refuses the lot, named."""
    if not items:
        raise ValidationFailed("Tick at least one item.", field="evidence_ids")
    reviews = []
    with session.begin_nested():
        for evidence, version in items:
            try:
                reviews.append(review_evidence(session, evidence, actor=actor, outcome=outcome,
                                               feedback_md=feedback_md, varcs=varcs,
                                               expected_version=version))
            except (InvalidTransition, PermissionDenied) as exc:
                title = current_version(evidence).title
                raise type(exc)(f"“{title}”: {exc.message} Nothing was recorded.") from exc
    return reviews


# --- criterion decisions ---------------------------------------------------------------------

def decision_evidence_state(session: Session, enrolment: Enrolment,
                            evidence_ids: list[int]) -> str:
    """Return a token over the cited evidence's current versions (to refuse stale forms)."""
    rows = session.execute(select(Evidence.id, Evidence.current_version).where(
        Evidence.id.in_(evidence_ids), Evidence.enrolment_id == enrolment.id)).all()
    return sha256_of(sorted((r.id, r.current_version) for r in rows))[:16]


def decide_criterion(session: Session, enrolment: Enrolment, criterion: Criterion, *,
                     actor: User, evidence_ids: list[int], note_md: str,
                     confirmation: SignerConfirmation, expected_state: str,
                     max_failures: int, lockout_minutes: int) -> CriterionDecision:
    """Record and sign "met" for a criterion, citing accepted evidence.

    :raises InvalidTransition: already decided, or the evidence changed since the page loaded.
    """
    items = _check_decision(session, enrolment, criterion, actor=actor,
                            evidence_ids=evidence_ids, expected_state=expected_state)
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    return _record_decision(session, enrolment, criterion, actor=actor, items=items,
                            note_md=note_md, typed=typed)


def _check_decision(session: Session, enrolment: Enrolment, criterion: Criterion, *,
                    actor: User, evidence_ids: list[int], expected_state: str) -> list[Evidence]:
    """Everything a decision must satisfy before anyone is asked to sign; the cited items."""
    if not can_assess(actor, enrolment):
        raise PermissionDenied("Only the learner's assessor decides their criteria.")
    if criterion.unit_id != enrolment.unit_id or criterion.is_retired:
        raise ValidationFailed("That criterion is not part of this unit.")
    if any(d.criterion_id == criterion.id for d in live_decisions(session, enrolment.id)):
        raise InvalidTransition(f"Criterion {criterion.number} has already been decided.")
    if not evidence_ids:
        raise ValidationFailed("Tick the evidence you relied on.", field="evidence_ids")
    items = list(session.scalars(select(Evidence).where(
        Evidence.id.in_(evidence_ids), Evidence.enrolment_id == enrolment.id)))
    if len(items) != len(set(evidence_ids)):
        raise ValidationFailed("Some of that evidence is not in this portfolio.",
                               field="evidence_ids")
    not_accepted = [current_version(e).title for e in items if e.status != "accepted"]
    if not_accepted:
        raise InvalidTransition("Accept the evidence before relying on it: "
                                + ", ".join(f"“{t}”" for t in not_accepted) + ".")

    entry = next(c for c in compute_coverage(session, enrolment, utcnow().date()).criteria
                 if c.criterion_id == criterion.id)
    counting = {i.evidence_id for i in entry.items if i.counts}
    not_counting = [current_version(e).title for e in items if e.id not in counting]
    if not_counting:
        raise ValidationFailed(
            f"Only evidence mapped to {criterion.number} by a method the unit accepts for it, "
            "and current, can be relied on: " + ", ".join(f"“{t}”" for t in not_counting)
            + ". Correct the mapping first if it belongs here.", field="evidence_ids")
    if decision_evidence_state(session, enrolment, evidence_ids) != expected_state:
        raise InvalidTransition("The evidence changed since you opened this page, so nothing "
                                "was signed. Reload the page, check it again and sign.")
    return items


def _record_decision(session: Session, enrolment: Enrolment, criterion: Criterion, *,
                     actor: User, items: list[Evidence], note_md: str,
                     typed: str) -> CriterionDecision:
    """Write one checked decision and its own signature, bound to its own content."""
    now = utcnow()
    statement = STATEMENTS["criterion_decision"].format(number=criterion.number)
    content = {
        "enrolment_id": enrolment.id, "learner_id": enrolment.learner_id,
        "unit": enrolment.unit.reference, "unit_version": enrolment.unit.version,
        "criterion": {"id": criterion.id, "number": criterion.number,
                      "version": criterion.version, "text": criterion.text},
        "outcome": "met", "note_md": (note_md or "").strip(),
        "evidence": [evidence_snapshot(session, e, current_version(e))
                     for e in sorted(items, key=lambda e: e.id)],
    }
    signature = make_signature(session, enrolment=enrolment, purpose="criterion_decision",
                               subject_type="criterion", subject_id=criterion.id,
                               signer_id=actor.id, signer_role=Role.ASSESSOR.value,
                               typed_name=typed, statement=statement, content=content,
                               signed_at=now)
    trainee = actor.is_trainee_assessor
    try:
        # The signature and the decision are written inside one savepoint: begin_nested()
        # flushes whatever is pending *before* the SAVEPOINT, so both must be added inside it,
        # or a refused duplicate would leave the transaction failed and the signature behind.
        with session.begin_nested():
            session.add(signature)
            session.flush()
            decision = CriterionDecision(
                enrolment_id=enrolment.id, criterion_id=criterion.id,
                status=decision_states.first_status(trainee=trainee),
                evidence=[{"evidence_id": e.id, "version": e.current_version} for e in items],
                note_md=content["note_md"], decided_by_id=actor.id, decided_at=now,
                signature_id=signature.id, needs_countersignature=1 if trainee else 0)
            session.add(decision)
            session.flush()
    except IntegrityError as exc:
        # Two clicks (or two assessors) at once: the unique index keeps exactly one decision.
        raise InvalidTransition(f"Criterion {criterion.number} has just been decided by "
                                "another request; nothing more was signed.") from exc
    _audit_signature(session, signature, actor, enrolment, criterion=criterion.number,
                     decision_id=decision.id, status=decision.status)
    return decision


@dataclass(frozen=True)
class BatchItem:
    """One criterion of a batch: the evidence to cite and the state the page was drawn from."""
    criterion: Criterion
    evidence_ids: list[int]
    expected_state: str


def decide_criteria(session: Session, enrolment: Enrolment, batch: list[BatchItem], *,
                    actor: User, note_md: str, confirmation: SignerConfirmation,
                    max_failures: int, lockout_minutes: int) -> list[CriterionDecision]:
    """Sign several criteria in one ceremony: one password, one typed name.

    Each criterion still gets its own decision and its own signature over its own content,
    exactly as if decided one by one. All or nothing: every criterion is checked before the
    password is asked for, and the decisions are written inside one savepoint, so a criterion
    decided by a concurrent request undoes the whole batch and says which one.
    """
    if not batch:
        raise ValidationFailed("Tick at least one criterion to sign.", field="criterion_ids")
    checked = []
    for entry in batch:
        try:
            checked.append((entry.criterion, _check_decision(
                session, enrolment, entry.criterion, actor=actor,
                evidence_ids=entry.evidence_ids, expected_state=entry.expected_state)))
        except (InvalidTransition, ValidationFailed) as exc:
            raise type(exc)(f"{entry.criterion.number}: {exc.message} Nothing was signed.",
                            **({"field": "criterion_ids"}
                               if isinstance(exc, ValidationFailed) else {})) from exc
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    with session.begin_nested():
        return [_record_decision(session, enrolment, criterion, actor=actor, items=items,
                                 note_md=note_md, typed=typed) for criterion, items in checked]


def countersign_decision(session: Session, decision: CriterionDecision, *, actor: User,
                         confirmation: SignerConfirmation, max_failures: int,
                         lockout_minutes: int) -> Signature:
    """A qualified assessor of the same centre countersigns a trainee's decision."""
    _check_countersign(session, decision, actor)
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    with session.begin_nested():  # a lost race leaves no countersignature behind
        return _record_countersignature(session, decision, actor, typed)


def countersign_decisions(session: Session, decisions: list[CriterionDecision], *, actor: User,
                          confirmation: SignerConfirmation, max_failures: int,
                          lockout_minutes: int) -> list[Signature]:
    """Countersign several decisions in one ceremony; each gets its own countersignature.

    All are checked before the password is asked for, and written in one savepoint: if one was
    countersigned or returned meanwhile, none is, and the message names it.
    """
    if not decisions:
        raise ValidationFailed("Tick at least one decision to countersign.",
                               field="decision_ids")
    for decision in decisions:
        try:
            _check_countersign(session, decision, actor)
        except (InvalidTransition, PermissionDenied) as exc:
            raise type(exc)(f"{decision.criterion.number} for "
                            f"{decision.enrolment.learner.full_name}: {exc.message} "
                            "Nothing was countersigned.") from exc
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    with session.begin_nested():
        return [_record_countersignature(session, d, actor, typed) for d in decisions]


def _check_countersign(session: Session, decision: CriterionDecision, actor: User) -> None:
    enrolment = decision.enrolment
    if actor.id == enrolment.iqa_id:
        raise PermissionDenied("You are the internal quality assurer of this learner's "
                               "enrolment, so you cannot countersign its decisions: you must "
                               "stay independent of what you sample. Another qualified "
                               "assessor needs to countersign it.")
    if not can_countersign(actor, enrolment.learner.centre_id, decision.decided_by_id,
                           enrolment.learner_id, actor.assessor_status, enrolment.iqa_id):
        raise PermissionDenied("Only a qualified assessor of this centre, other than the one "
                               "who decided, can countersign.")
    if decision.status != "awaiting_countersignature":
        raise InvalidTransition("This decision is not waiting for a countersignature.")


def _record_countersignature(session: Session, decision: CriterionDecision, actor: User,
                             typed: str) -> Signature:
    enrolment = decision.enrolment
    decision_signature = decision.signature
    content = {"decision_id": decision.id, "criterion_id": decision.criterion_id,
               "enrolment_id": enrolment.id,
               "signatures": [decision_signature_ref(decision_signature)]}
    signature = make_signature(session, enrolment=enrolment, purpose="countersignature",
                               subject_type="decision", subject_id=decision.id,
                               signer_id=actor.id, signer_role=Role.ASSESSOR.value,
                               typed_name=typed, statement=STATEMENTS["countersignature"],
                               content=content, signed_at=utcnow())
    session.add(signature)
    session.flush()
    # Only from "awaiting": a return (or another countersign) that won the race leaves this
    # one with nothing to move, and it is refused.
    still_waiting, to_met = decision_states.claim_clause("countersign")
    moved = session.execute(
        update(CriterionDecision)
        .where(CriterionDecision.id == decision.id, still_waiting)
        .values(**to_met, countersigned_by_id=actor.id, countersignature_id=signature.id)
        .execution_options(synchronize_session=False))
    if rowcount(moved) != 1:
        raise InvalidTransition(f"{decision.criterion.number}: this decision is no longer "
                                "waiting for a countersignature; nothing was countersigned.")
    session.refresh(decision)
    _audit_signature(session, signature, actor, enrolment, decision_id=decision.id)
    return signature


RETURN_COMMENT_LIMIT = 5_000


def return_decision(session: Session, decision: CriterionDecision, *, actor: User,
                    comment_md: str, confirmation: SignerConfirmation, max_failures: int,
                    lockout_minutes: int) -> Signature:
    """A qualified assessor sends a trainee's decision back with comments (signed, audited).

    The decision stops waiting and never counts; the trainee may decide the criterion again,
    which asks for a countersignature again. Two people acting at once on one decision (or a
    double click) cannot both succeed: the status moves only from "awaiting_countersignature".
    """
    enrolment = decision.enrolment
    if not can_countersign(actor, enrolment.learner.centre_id, decision.decided_by_id,
                           enrolment.learner_id, actor.assessor_status, enrolment.iqa_id):
        raise PermissionDenied("Only a qualified assessor of this centre, other than the one "
                               "who decided and the learner's IQA, can return this decision.")
    comment = (comment_md or "").strip()
    if not comment:
        raise ValidationFailed("Say what the trainee should look at again: the comment is "
                               "what they will work from.", field="comment_md")
    if len(comment) > RETURN_COMMENT_LIMIT:
        raise ValidationFailed(f"Keep the comment under {RETURN_COMMENT_LIMIT:,} characters.",
                               field="comment_md")
    if decision.status != "awaiting_countersignature":
        raise InvalidTransition("This decision is no longer waiting for a countersignature: "
                                "someone has already countersigned or returned it.")
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    decision_signature = decision.signature
    content = {"decision_id": decision.id, "criterion_id": decision.criterion_id,
               "enrolment_id": enrolment.id, "comment_md": comment,
               "signatures": [decision_signature_ref(decision_signature)]}
    now = utcnow()
    signature = make_signature(session, enrolment=enrolment, purpose="decision_return",
                               subject_type="decision", subject_id=decision.id,
                               signer_id=actor.id, signer_role=Role.ASSESSOR.value,
                               typed_name=typed, statement=STATEMENTS["decision_return"],
                               content=content, signed_at=now)
    still_waiting, to_returned = decision_states.claim_clause("return")
    moved = session.execute(
        update(CriterionDecision)
        .where(CriterionDecision.id == decision.id, still_waiting)
        .values(**to_returned, ended_at=now,
                ended_reason=f"Returned to the trainee by {actor.full_name}")
        .execution_options(synchronize_session=False))
    if rowcount(moved) != 1:
        raise InvalidTransition("This decision is no longer waiting for a countersignature: "
                                "someone has already countersigned or returned it.")
    session.add(signature)
    session.flush()
    session.refresh(decision)
    _audit_signature(session, signature, actor, enrolment, decision_id=decision.id,
                     criterion=decision.criterion.number)
    return signature


def returned_decision(session: Session, decision: CriterionDecision) -> Signature | None:
    """The signed return of a decision (its comment is in the signature's content)."""
    if decision.status != "returned":
        return None
    return session.scalar(select(Signature).where(
        Signature.purpose == "decision_return", Signature.subject_type == "decision",
        Signature.subject_id == decision.id).order_by(Signature.id.desc()).limit(1))


# --- declarations and unit sign-off ---------------------------------------------------------

def submit_with_declaration(session: Session, evidence: Evidence, *, actor: User,
                            confirmation: SignerConfirmation | None, max_failures: int,
                            lockout_minutes: int) -> Signature | None:
    """Submit evidence; a learner signs the declaration of authenticity as they do.

    The signer is confirmed before anything changes: a wrong password or name (which is
    recorded, for throttling) must never leave the evidence submitted without its declaration.
    """
    check_submittable(evidence, actor=actor)
    is_learner = actor.id == evidence.enrolment.learner_id
    typed = ""
    if is_learner:
        if confirmation is None:
            raise ValidationFailed("Enter your password and full name to sign the declaration.",
                                   field="password")
        typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                               lockout_minutes=lockout_minutes)
    submit_evidence(session, evidence, actor=actor)
    if not is_learner:
        return None  # an assessor's own record carries no learner declaration
    return _declare(session, evidence, actor, typed)


def submit_many(session: Session, items: list[Evidence], *, actor: User,
                confirmation: SignerConfirmation, max_failures: int,
                lockout_minutes: int) -> list[Signature]:
    """A learner submits several items under one signing: one name, one password; each item
    still gets its own declaration over its own version. All or nothing, the item named."""
    if not items:
        raise ValidationFailed("Tick at least one draft to submit.", field="evidence_ids")
    for evidence in items:
        if actor.id != evidence.enrolment.learner_id:
            raise PermissionDenied("Only the learner submits their own evidence this way.")
        try:
            check_submittable(evidence, actor=actor)
        except (InvalidTransition, PermissionDenied) as exc:
            title = current_version(evidence).title
            raise type(exc)(f"“{title}”: {exc.message} Nothing was submitted.") from exc
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    signatures = []
    with session.begin_nested():
        for evidence in items:
            submit_evidence(session, evidence, actor=actor)
            signatures.append(_declare(session, evidence, actor, typed))
    return signatures


def sign_evidence_declaration(session: Session, evidence: Evidence, *, actor: User,
                              confirmation: SignerConfirmation, max_failures: int,
                              lockout_minutes: int) -> Signature:
    """The learner declares a submission their own work (signed over that version)."""
    if actor.id != evidence.enrolment.learner_id:
        raise PermissionDenied("Only the learner signs the declaration for their own evidence.")
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    return _declare(session, evidence, actor, typed)


def record_by_assessor(session: Session, evidence: Evidence, *, actor: User,
                       confirmation: SignerConfirmation, max_failures: int,
                       lockout_minutes: int, wanted: list[Any] | None = None) -> Signature:
    """The assessor records their own evidence (an observation, a discussion) and signs it in
    one step: it is accepted at once, mapped as they ticked (`wanted`, else their mapping so
    far), with no submit-and-review round trip and nobody emailed to review it.

    The signer is confirmed before anything changes; the rest is one savepoint.
    """
    check_recordable(evidence, actor=actor, wanted=wanted)
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    return sign_assessor_record(session, evidence, actor=actor, typed=typed, wanted=wanted)


def check_recordable(evidence: Evidence, *, actor: User, wanted: list[Any] | None) -> None:
    """Refuse a record that could not be signed, before the assessor is asked to sign."""
    if not can_assess(actor, evidence.enrolment) or evidence.created_by_id != actor.id:
        raise PermissionDenied("Only the assessor who made this record signs it.")
    if "assessor" not in KINDS[evidence.kind].added_by:
        raise InvalidTransition("This kind of evidence is the learner's to submit.")
    if "record" not in states.possible(evidence):
        raise InvalidTransition(f"This record is {evidence.status}: it was signed already.")

    check_clean(evidence)
    if not (wanted if wanted is not None else (live_mappings(evidence, "assessor")
                                               or live_mappings(evidence, "learner"))):
        raise ValidationFailed("Tick at least one criterion the record shows.",
                               field="criteria")


def sign_assessor_record(session: Session, evidence: Evidence, *, actor: User, typed: str,
                         wanted: list[Any] | None = None) -> Signature:
    """Sign an assessor's record once `confirm_signer` has returned `typed`: map it, accept it
    and sign it, all in one savepoint."""
    check_recordable(evidence, actor=actor, wanted=wanted)
    enrolment = evidence.enrolment
    with session.begin_nested():
        if wanted is None and evidence.assessor_mapped_at is None:
            # The mapping so far becomes the assessor's final one.
            wanted = [_as_input(m) for m in (live_mappings(evidence, "assessor")
                                             or live_mappings(evidence, "learner")).values()]
        if wanted is not None:
            set_mappings(session, evidence, actor=actor, wanted=wanted)
        version = current_version(evidence)
        now = utcnow()
        states.move(evidence, "record")
        evidence.submitted_at = evidence.updated_at = now
        session.add(EvidenceReview(
            evidence_id=evidence.id, version=version.version, reviewer_id=actor.id,
            outcome="accepted", feedback_md="",
            # Seen first hand, now: valid, authentic, reliable and current by its nature;
            # sufficiency is judged with the rest when each criterion is decided.
            varcs={k: k != "sufficient" for k in VARCS}))
        signature = make_signature(session,
            enrolment=enrolment, purpose="assessor_record", subject_type="evidence",
            subject_id=evidence.id, signer_id=actor.id, signer_role=Role.ASSESSOR.value,
            typed_name=typed, statement=STATEMENTS["assessor_record"],
            content=evidence_snapshot(session, evidence, version), signed_at=now)
        session.add(signature)
        session.flush()
        record_event(session, action="evidence.recorded", subject_type="evidence",
                     subject_id=evidence.id, actor=actor, actor_role=Role.ASSESSOR.value,
                     learner_id=enrolment.learner_id,
                     detail={"version": version.version, "signature_id": signature.id})
        _audit_signature(session, signature, actor, enrolment, evidence_id=evidence.id,
                         version=version.version)
    return signature


def _as_input(mapping: Any) -> Any:
    return MappingInput(mapping.criterion_id, mapping.rationale, mapping.location)


def _declare(session: Session, evidence: Evidence, actor: User, typed: str) -> Signature:
    enrolment = evidence.enrolment
    version = current_version(evidence)
    signature = make_signature(session,
        enrolment=enrolment, purpose="evidence_declaration", subject_type="evidence",
        subject_id=evidence.id, signer_id=actor.id, signer_role=Role.LEARNER.value,
        typed_name=typed, statement=actor.centre.evidence_declaration,
        content=evidence_snapshot(session, evidence, version), signed_at=utcnow())
    session.add(signature)
    session.flush()
    _audit_signature(session, signature, actor, enrolment, evidence_id=evidence.id,
                     version=version.version)
    return signature


def _valid(session: Session, enrolment_id: int, purpose: str) -> Signature | None:
    for signature in session.scalars(select(Signature).where(
            Signature.enrolment_id == enrolment_id, Signature.purpose == purpose,
            Signature.invalidated_at.is_(None)).order_by(Signature.id.desc())):
        if verify_signature(session, signature).state == "valid":
            return signature
    return None


def unit_declaration(session: Session, enrolment: Enrolment) -> Signature | None:
    """Return the learner's current, valid unit declaration."""
    return _valid(session, enrolment.id, "unit_declaration")


def unit_signoff(session: Session, enrolment: Enrolment) -> Signature | None:
    """Return the assessor's current, valid unit sign-off."""
    return _valid(session, enrolment.id, "unit_signoff")


def unit_cosign(session: Session, enrolment: Enrolment) -> Signature | None:
    """Return the learner's current, valid co-signature of the sign-off."""
    return _valid(session, enrolment.id, "unit_cosign")


def sign_unit_declaration(session: Session, enrolment: Enrolment, *, actor: User,
                          confirmation: SignerConfirmation, max_failures: int,
                          lockout_minutes: int) -> Signature:
    """The learner declares all the unit's evidence their own work."""
    if actor.id != enrolment.learner_id:
        raise PermissionDenied("Only the learner signs their unit declaration.")
    if unit_declaration(session, enrolment) is not None:
        raise InvalidTransition("You have already declared this unit, and nothing has changed "
                                "since. Nothing was signed.")
    items = list(session.scalars(select(Evidence).where(
        Evidence.enrolment_id == enrolment.id, Evidence.status != "withdrawn")
        .order_by(Evidence.id)))
    if not items:
        raise InvalidTransition("There is no evidence to declare yet.")
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    content = {"enrolment_id": enrolment.id, "unit": enrolment.unit.reference,
               "evidence": [evidence_snapshot(session, e, current_version(e)) for e in items]}
    signature = make_signature(session,
        enrolment=enrolment, purpose="unit_declaration", subject_type="enrolment",
        subject_id=enrolment.id, signer_id=actor.id, signer_role=Role.LEARNER.value,
        typed_name=typed, statement=actor.centre.unit_declaration, content=content,
        signed_at=utcnow())
    session.add(signature)
    session.flush()
    _audit_signature(session, signature, actor, enrolment, evidence=len(items))
    return signature


def unit_readiness(session: Session, enrolment: Enrolment) -> list[str]:
    """Return what still stops the unit being signed off (empty when ready)."""
    criteria = list(session.scalars(select(Criterion).where(
        Criterion.unit_id == enrolment.unit_id, Criterion.is_retired.is_(False))
        .order_by(Criterion.position)))
    decided = {d.criterion_id: d for d in live_decisions(session, enrolment.id)}
    missing = []
    open_numbers = [c.number for c in criteria if c.id not in decided]
    if open_numbers:
        missing.append("Not yet met: " + ", ".join(open_numbers) + ".")
    waiting = [c.number for c in criteria
               if c.id in decided and decided[c.id].status == "awaiting_countersignature"]
    if waiting:
        missing.append("Waiting for a countersignature: " + ", ".join(waiting) + ".")
    if unit_declaration(session, enrolment) is None:
        missing.append("The learner has not signed the unit declaration (or evidence changed "
                       "since they did).")
    return missing


def sign_off_unit(session: Session, enrolment: Enrolment, *, actor: User,
                  confirmation: SignerConfirmation, max_failures: int,
                  lockout_minutes: int) -> Signature:
    """The assessor signs the unit off once every criterion is met and the learner declared."""
    if not can_assess(actor, enrolment):
        raise PermissionDenied("Only the learner's assessor signs the unit off.")
    if unit_signoff(session, enrolment) is not None:
        raise InvalidTransition("This unit is already signed off.")
    blockers = unit_readiness(session, enrolment)
    if blockers:
        raise InvalidTransition("The unit cannot be signed off yet. " + " ".join(blockers))
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    decisions = sorted(live_decisions(session, enrolment.id), key=lambda d: d.criterion_id)
    refs = [decision_signature_ref(d.signature) for d in decisions]
    declaration = unit_declaration(session, enrolment)
    assert declaration is not None
    refs.append(decision_signature_ref(declaration))
    content = {"enrolment_id": enrolment.id, "unit": enrolment.unit.reference,
               "decisions": [{"decision_id": d.id, "criterion_id": d.criterion_id}
                             for d in decisions],
               "signatures": refs}
    signature = make_signature(session,
        enrolment=enrolment, purpose="unit_signoff", subject_type="enrolment",
        subject_id=enrolment.id, signer_id=actor.id, signer_role=Role.ASSESSOR.value,
        typed_name=typed, statement=STATEMENTS["unit_signoff"], content=content,
        signed_at=utcnow())
    session.add(signature)
    session.flush()
    _audit_signature(session, signature, actor, enrolment)
    return signature


def cosign_unit(session: Session, enrolment: Enrolment, *, actor: User,
                confirmation: SignerConfirmation, max_failures: int,
                lockout_minutes: int) -> Signature:
    """The learner co-signs the assessor's sign-off; the enrolment is then complete."""
    if actor.id != enrolment.learner_id:
        raise PermissionDenied("Only the learner co-signs their unit.")
    signoff = unit_signoff(session, enrolment)
    if signoff is None:
        raise InvalidTransition("Your assessor has not signed the unit off yet.")
    if unit_cosign(session, enrolment) is not None:
        raise InvalidTransition("You have already co-signed this unit.")
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    signature = make_signature(session,
        enrolment=enrolment, purpose="unit_cosign", subject_type="enrolment",
        subject_id=enrolment.id, signer_id=actor.id, signer_role=Role.LEARNER.value,
        typed_name=typed, statement=STATEMENTS["unit_cosign"],
        content={"enrolment_id": enrolment.id, "signatures": [decision_signature_ref(signoff)]},
        signed_at=utcnow())
    session.add(signature)
    enrolment_states.move(enrolment, "complete")
    session.flush()
    _audit_signature(session, signature, actor, enrolment)
    return signature


# --- invalidation ---------------------------------------------------------------------------

def invalidate_for_evidence(session: Session, evidence: Evidence, old_version: int,
                            new_version: int | None, *, actor: User) -> list[int]:
    """After a revision (or a withdrawal: no new version), end what covered the old content.

    Returns the ids of the signatures invalidated. The rows are kept as history.
    """
    title = evidence.versions[old_version - 1].title
    reason = (f"evidence “{title}” changed after signing (version {old_version} → {new_version})"
              if new_version is not None else f"evidence “{title}” was withdrawn after signing")
    now = utcnow()
    touched: list[int] = []
    decisions = [d for d in live_decisions(session, evidence.enrolment_id)
                 if any(item["evidence_id"] == evidence.id for item in d.evidence)]
    for decision in decisions:
        decision_states.move(decision, "invalidate")
        decision.ended_at = now
        decision.ended_reason = reason
    session.flush()
    ended = {d.id for d in decisions}
    signoff_ended = False
    for signature in session.scalars(select(Signature).where(
            Signature.enrolment_id == evidence.enrolment_id,
            Signature.invalidated_at.is_(None))):
        if signature.purpose in ("unit_signoff", "unit_cosign"):
            hit = True  # a signed-off unit covers all its evidence
        elif signature.purpose == "countersignature":
            hit = signature.content.get("decision_id") in ended
        else:
            items = signature.content.get("evidence") or (
                [signature.content] if "evidence_id" in signature.content else [])
            hit = any(item.get("evidence_id") == evidence.id for item in items)
        if hit:
            signoff_ended = signoff_ended or signature.purpose in ("unit_signoff", "unit_cosign")
            signature.invalidated_at = now
            signature.invalidated_reason = reason
            touched.append(signature.id)
    detail: dict[str, Any] = {"signatures": touched, "reason": reason}
    enrolment = evidence.enrolment
    # The completion rested on the sign-off that just ended: the unit is open again.
    if signoff_ended and enrolment_states.reopen_if_completed(enrolment):
        detail["enrolment_reopened"] = True
    if touched:
        record_event(session, action="signature.invalidated", subject_type="evidence",
                     subject_id=evidence.id, actor=actor,
                     learner_id=evidence.enrolment.learner_id, detail=detail)
    return touched
