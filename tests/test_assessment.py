"""Reviews, decisions, countersigning, declarations and unit sign-off, as a state machine.

The transition table walks every decision and signature action from every starting state that
matters, as each kind of person; the tests after it cover what a table cannot: authentication of
the signer, throttling, stale pages, two requests at once, and invalidation on change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portfolio.assessment import services as assessment
from portfolio.assessment.services import (
    SignerConfirmation,
    cosign_unit,
    countersign_decision,
    decide_criterion,
    decision_evidence_state,
    review_evidence,
    sign_evidence_declaration,
    sign_off_unit,
    sign_unit_declaration,
    unit_readiness,
    unit_signoff,
)
from portfolio.assessment.signing import verify_all, verify_signature
from portfolio.audit import verify_chain
from portfolio.auth.services import hash_password
from portfolio.errors import InvalidTransition, PermissionDenied, Throttled, ValidationFailed
from portfolio.evidence.coverage import compute_coverage
from portfolio.evidence.services import (
    EvidenceInput,
    current_version,
    revise_evidence,
    submit_evidence,
    withdraw_evidence,
)
from portfolio.models import (
    AuditEvent,
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    LoginAttempt,
    Signature,
    User,
)
from tests.factories import (
    LIMITS,
    PASSWORD,
    World,
    accept,
    criterion,
    decide,
    make_evidence,
    make_user,
    make_world,
    sign_as,
)

VARCS_ALL = {k: True for k in ("valid", "authentic", "reliable", "current", "sufficient")}
OTHER_PASSWORD = "somebody else's own passphrase"


# --- the cast and the starting states -------------------------------------------------------

@dataclass
class Cast:
    """make_world's people plus the assessors a countersignature rule has to tell apart."""

    w: World
    other_assessor: User  # qualified, same centre, not assigned to anyone here
    other_trainee: User  # trainee, same centre
    far_assessor: User  # qualified, another centre


def make_cast(session: Session) -> Cast:
    w = make_world(session)
    centre = w.assessor.centre
    cast = Cast(
        w,
        other_assessor=make_user(session, centre, "assessor", name="Quinn Qualified",
                                 assessor_status="qualified"),
        other_trainee=make_user(session, centre, "assessor", name="Tara Trainee",
                                assessor_status="trainee"),
        far_assessor=make_user(session, w.foreign_learner.centre, "assessor",
                               name="Fay Faraway", assessor_status="qualified"),
    )
    session.commit()
    return cast


@dataclass
class Scene:
    """What a row acts on: an enrolment, perhaps one evidence item and one decision."""

    enrolment: Enrolment
    evidence: Evidence | None = None
    decision: CriterionDecision | None = None
    extra: dict[str, Evidence] = field(default_factory=dict)


def refer(session: Session, evidence: Evidence, assessor: User,
          feedback: str = "Say what you did after the call.") -> None:
    review_evidence(session, evidence, actor=assessor, outcome="referred", feedback_md=feedback,
                    varcs=VARCS_ALL, expected_version=evidence.current_version)


def revise(session: Session, evidence: Evidence, actor: User, note: str = "after feedback"):
    """Save a new version of the evidence with a sentence added, keeping its files."""
    old = current_version(evidence)
    return revise_evidence(
        session, evidence, actor=actor,
        data=EvidenceInput(title=old.title, activity_on=old.activity_on,
                           activity_place=old.activity_place,
                           body_md=old.body_md + "\n\nI also followed up in writing.",
                           details=dict(old.details), is_simulated=old.is_simulated,
                           personal_data_confirmed=True, change_note=note),
        keep_file_ids=[f.id for f in old.files], files=[],
        expected_version=evidence.current_version, today=date.today())


def resubmit(session: Session, evidence: Evidence, learner: User) -> None:
    submit_evidence(session, evidence, actor=learner)
    sign_evidence_declaration(session, evidence, actor=learner, confirmation=sign_as(learner),
                              **LIMITS)


def unit_numbers(session: Session, enrolment: Enrolment) -> list[str]:
    return list(session.scalars(select(Criterion.number).where(
        Criterion.unit_id == enrolment.unit_id, Criterion.is_retired.is_(False))
        .order_by(Criterion.position)))


def decide_all(session: Session, enrolment: Enrolment, assessor: User, evidence: Evidence,
               *, skip: tuple[str, ...] = (), lo2: Evidence | None = None
               ) -> list[CriterionDecision]:
    """Decide every criterion: LO1 on `evidence`, LO2 on `lo2` (a method LO2 accepts)."""
    return [decide(session, enrolment, assessor, n,
                   [evidence if n.startswith("1.") or lo2 is None else lo2])
            for n in unit_numbers(session, enrolment) if n not in skip]


def observed(session: Session, enrolment: Enrolment, assessor: User) -> Evidence:
    """An accepted observation covering LO2 (a reflective account cannot show performance)."""
    lo2 = tuple(n for n in unit_numbers(session, enrolment) if n.startswith("2."))
    item = make_evidence(session, enrolment, assessor, "observation",
                         title="Observed complaint handling", maps=lo2, submit=True)
    accept(session, item, assessor)
    return item


def declare_unit(session: Session, enrolment: Enrolment, learner: User) -> Signature:
    return sign_unit_declaration(session, enrolment, actor=learner, confirmation=sign_as(learner),
                                 **LIMITS)


def build_unit(session: Session, cast: Cast, *, skip: tuple[str, ...] = (),
               declared: bool = True) -> Scene:
    """The learner's evidence covers all 17 criteria, is accepted and decided (except `skip`).

    A second accepted item (mapped to 1.1, cited by no decision) is kept in `extra["other"]`.
    """
    w = cast.w
    numbers = tuple(unit_numbers(session, w.enrolment))
    assert len(numbers) == 17
    main = make_evidence(session, w.enrolment, w.learner, "reflective_account",
                         title="How I resolve complaints", maps=numbers, submit=True)
    accept(session, main, w.assessor)
    other = make_evidence(session, w.enrolment, w.learner, title="Complaints procedure notes",
                          maps=("1.1",), submit=True)
    accept(session, other, w.assessor)
    decide_all(session, w.enrolment, w.assessor, main, skip=skip,
               lo2=observed(session, w.enrolment, w.assessor))
    if declared:
        declare_unit(session, w.enrolment, w.learner)
    session.commit()
    return Scene(w.enrolment, main, extra={"other": other})


def _evidence(status: str) -> Callable[[Session, Cast], Scene]:
    def build(session: Session, cast: Cast) -> Scene:
        w = cast.w
        item = make_evidence(session, w.enrolment, w.learner, maps=("1.1",),
                             submit=status != "draft" and status != "withdrawn")
        if status == "accepted":
            accept(session, item, w.assessor)
        elif status == "referred":
            refer(session, item, w.assessor)
        elif status == "withdrawn":
            withdraw_evidence(session, item, actor=w.learner, reason="wrong unit")
        assert item.status == status
        session.commit()
        return Scene(w.enrolment, item)
    return build


def _decided(session: Session, cast: Cast) -> Scene:
    scene = _evidence("accepted")(session, cast)
    scene.decision = decide(session, scene.enrolment, cast.w.assessor, "1.1", [scene.evidence])
    session.commit()
    return scene


def _trainee_accepted(session: Session, cast: Cast) -> Scene:
    w = cast.w
    item = make_evidence(session, w.other_enrolment, w.other_learner, maps=("1.2",),
                         submit=True)
    accept(session, item, w.trainee)
    session.commit()
    return Scene(w.other_enrolment, item)


def _trainee_decided(session: Session, cast: Cast) -> Scene:
    scene = _trainee_accepted(session, cast)
    scene.decision = decide(session, scene.enrolment, cast.w.trainee, "1.2", [scene.evidence])
    assert scene.decision.status == "awaiting_countersignature"
    session.commit()
    return scene


def _trainee_countersigned(session: Session, cast: Cast) -> Scene:
    scene = _trainee_decided(session, cast)
    countersign_decision(session, scene.decision, actor=cast.w.assessor,
                         confirmation=sign_as(cast.w.assessor), **LIMITS)
    session.commit()
    return scene


def _signed_off(session: Session, cast: Cast) -> Scene:
    scene = build_unit(session, cast)
    sign_off_unit(session, scene.enrolment, actor=cast.w.assessor,
                  confirmation=sign_as(cast.w.assessor), **LIMITS)
    session.commit()
    return scene


def _completed(session: Session, cast: Cast) -> Scene:
    scene = _signed_off(session, cast)
    cosign_unit(session, scene.enrolment, actor=cast.w.learner,
                confirmation=sign_as(cast.w.learner), **LIMITS)
    session.commit()
    return scene


STATES: dict[str, Callable[[Session, Cast], Scene]] = {
    "draft": _evidence("draft"),
    "submitted": _evidence("submitted"),
    "accepted": _evidence("accepted"),
    "referred": _evidence("referred"),
    "withdrawn": _evidence("withdrawn"),
    "criterion met": _decided,
    "trainee's evidence accepted": _trainee_accepted,
    "awaiting countersignature": _trainee_decided,
    "countersigned": _trainee_countersigned,
    "16 of 17 met, declared": lambda s, c: build_unit(s, c, skip=("2.9",)),
    "17 met, not declared": lambda s, c: build_unit(s, c, declared=False),
    "ready for sign-off": build_unit,
    "signed off": _signed_off,
    "completed": _completed,
}


# --- actions --------------------------------------------------------------------------------

def unit_state(session: Session, enrolment: Enrolment) -> str:
    if enrolment.status == "completed":
        return "completed"
    if unit_signoff(session, enrolment) is not None:
        return "signed off"
    return "open" if unit_readiness(session, enrolment) else "ready"


def evidence_state(session: Session, scene: Scene) -> str:
    return scene.evidence.status


def decision_state(session: Session, scene: Scene) -> str:
    return "undecided" if scene.decision is None else scene.decision.status


def _review(outcome: str, feedback: str):
    def act(session: Session, scene: Scene, actor: User) -> str:
        review_evidence(session, scene.evidence, actor=actor, outcome=outcome,
                        feedback_md=feedback, varcs=VARCS_ALL,
                        expected_version=scene.evidence.current_version)
        return scene.evidence.status
    return act


def _revise(session: Session, scene: Scene, actor: User) -> str:
    before = scene.evidence.current_version
    revise(session, scene.evidence, actor)
    assert scene.evidence.current_version == before + 1
    return scene.evidence.status


def _decide(session: Session, scene: Scene, actor: User,
            confirmation: SignerConfirmation | None = None) -> str:
    number = "1.2" if scene.enrolment.assessor.is_trainee_assessor else "1.1"
    ids = [scene.evidence.id]
    scene.decision = decide_criterion(
        session, scene.enrolment, criterion(session, number), actor=actor, evidence_ids=ids,
        note_md="Clear account of the procedure.", confirmation=confirmation or sign_as(actor),
        expected_state=decision_evidence_state(session, scene.enrolment, ids), **LIMITS)
    return scene.decision.status


def _decide_as(whose_password: str, whose_name: str):
    """The actor is signed in, but someone else's password or name is entered."""
    def act(session: Session, scene: Scene, actor: User) -> str:
        people = {"actor": actor, "learner": scene.enrolment.learner}
        _distinct_password(session, scene.enrolment.learner)
        password = PASSWORD if whose_password == "actor" else OTHER_PASSWORD
        return _decide(session, scene, actor, SignerConfirmation(
            password=password, typed_name=people[whose_name].full_name))
    return act


def _countersign(session: Session, scene: Scene, actor: User) -> str:
    countersign_decision(session, scene.decision, actor=actor, confirmation=sign_as(actor),
                         **LIMITS)
    return scene.decision.status


def _sign_off(session: Session, scene: Scene, actor: User) -> str:
    sign_off_unit(session, scene.enrolment, actor=actor, confirmation=sign_as(actor), **LIMITS)
    return unit_state(session, scene.enrolment)


def _cosign(session: Session, scene: Scene, actor: User) -> str:
    cosign_unit(session, scene.enrolment, actor=actor, confirmation=sign_as(actor), **LIMITS)
    return unit_state(session, scene.enrolment)


def _cosign_with_assessor_password(session: Session, scene: Scene, actor: User) -> str:
    _distinct_password(session, scene.enrolment.learner)
    cosign_unit(session, scene.enrolment, actor=actor, confirmation=SignerConfirmation(
        password=PASSWORD, typed_name=actor.full_name), **LIMITS)
    return unit_state(session, scene.enrolment)


def _distinct_password(session: Session, user: User) -> None:
    user.password_hash = hash_password(OTHER_PASSWORD)
    session.flush()


ACTIONS = {
    "accept": (_review("accepted", ""), evidence_state),
    "refer": (_review("referred", "Add what you did after the call."), evidence_state),
    "refer without feedback": (_review("referred", "  "), evidence_state),
    "revise": (_revise, evidence_state),
    "decide met": (_decide, decision_state),
    "decide, learner's password": (_decide_as("learner", "actor"), decision_state),
    "decide, learner's name": (_decide_as("actor", "learner"), decision_state),
    "countersign": (_countersign, decision_state),
    "sign off": (_sign_off, lambda s, scene: unit_state(s, scene.enrolment)),
    "co-sign": (_cosign, lambda s, scene: unit_state(s, scene.enrolment)),
    "co-sign, assessor's password": (_cosign_with_assessor_password,
                                     lambda s, scene: unit_state(s, scene.enrolment)),
}


def actor_for(key: str, cast: Cast, scene: Scene) -> User:
    w = cast.w
    return {
        "assessor": scene.enrolment.assessor,  # the one assigned to this enrolment
        "qualified assessor": w.assessor,  # qualified, same centre (not the trainee's learner's)
        "other assessor": cast.other_assessor,
        "trainee": w.trainee,
        "other trainee": cast.other_trainee,
        "far assessor": cast.far_assessor,
        "learner": scene.enrolment.learner,
        "iqa": w.iqa,
        "admin": w.admin,
    }[key]


PI, IT, VF = PermissionDenied, InvalidTransition, ValidationFailed
TABLE = [
    # Reviewing: only submitted -> accepted/referred and accepted -> referred; feedback needed.
    ("draft", "accept", "assessor", IT),
    ("draft", "refer", "assessor", IT),
    ("submitted", "accept", "assessor", "accepted"),
    ("submitted", "refer", "assessor", "referred"),
    ("submitted", "refer without feedback", "assessor", VF),
    ("submitted", "accept", "other assessor", PI),
    ("submitted", "accept", "learner", PI),
    ("submitted", "accept", "iqa", PI),
    ("accepted", "accept", "assessor", IT),
    ("accepted", "refer", "assessor", "referred"),
    ("accepted", "refer without feedback", "assessor", VF),
    ("referred", "accept", "assessor", IT),
    ("referred", "refer", "assessor", IT),
    ("withdrawn", "accept", "assessor", IT),
    ("withdrawn", "refer", "assessor", IT),
    # The learner revises a draft or a referral, never what is with (or passed by) the assessor.
    ("draft", "revise", "learner", "draft"),  # a new version each time
    ("referred", "revise", "learner", "referred"),
    ("referred", "revise", "assessor", PI),
    ("submitted", "revise", "learner", IT),
    ("accepted", "revise", "learner", IT),
    ("withdrawn", "revise", "learner", IT),
    # Deciding: accepted evidence only, by the assigned assessor only, once.
    ("accepted", "decide met", "assessor", "met"),
    ("submitted", "decide met", "assessor", IT),
    ("referred", "decide met", "assessor", IT),
    ("accepted", "decide met", "other assessor", PI),
    ("accepted", "decide met", "learner", PI),
    ("accepted", "decide met", "iqa", PI),
    ("accepted", "decide met", "admin", PI),
    ("criterion met", "decide met", "assessor", IT),
    # Nobody signs as someone else: the learner's password or name at the assessor's desk.
    ("accepted", "decide, learner's password", "assessor", VF),
    ("accepted", "decide, learner's name", "assessor", VF),
    # A trainee's decision waits for a qualified assessor of the same centre.
    ("trainee's evidence accepted", "decide met", "assessor", "awaiting_countersignature"),
    ("awaiting countersignature", "countersign", "qualified assessor", "met"),
    ("awaiting countersignature", "countersign", "trainee", PI),
    ("awaiting countersignature", "countersign", "other trainee", PI),
    ("awaiting countersignature", "countersign", "far assessor", PI),
    ("awaiting countersignature", "countersign", "learner", PI),
    ("awaiting countersignature", "countersign", "iqa", PI),
    ("countersigned", "countersign", "other assessor", IT),
    ("countersigned", "decide met", "assessor", IT),
    ("criterion met", "countersign", "other assessor", IT),
    # Unit sign-off: every criterion met and the learner's unit declaration, then co-sign.
    ("16 of 17 met, declared", "sign off", "assessor", IT),
    ("17 met, not declared", "sign off", "assessor", IT),
    ("ready for sign-off", "sign off", "assessor", "signed off"),
    ("ready for sign-off", "sign off", "other assessor", PI),
    ("ready for sign-off", "sign off", "learner", PI),
    ("ready for sign-off", "co-sign", "learner", IT),
    ("signed off", "sign off", "assessor", IT),
    ("signed off", "co-sign", "learner", "completed"),
    ("signed off", "co-sign", "assessor", PI),
    ("signed off", "co-sign, assessor's password", "learner", VF),
    ("completed", "co-sign", "learner", IT),
]


def _counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count(Signature.id))),
            session.scalar(select(func.count(CriterionDecision.id))))


@pytest.mark.parametrize(("start", "action", "actor", "expected"), [
    pytest.param(*row, id=f"{row[0]} | {row[1]} | {row[2]}") for row in TABLE])
def test_transition_table(session, start, action, actor, expected):
    cast = make_cast(session)
    scene = STATES[start](session, cast)
    act, observe = ACTIONS[action]
    person = actor_for(actor, cast, scene)
    before_state = observe(session, scene)
    before_counts = _counts(session)
    if isinstance(expected, str):
        assert act(session, scene, person) == expected
        session.commit()
        assert observe(session, scene) == expected
        allowed = {"valid", "invalidated"} if action == "revise" else {"valid"}
        assert {v.state for v in verify_all(session)} <= allowed
    else:
        with pytest.raises(expected):
            act(session, scene, person)
        # A page that refuses an action commits (to keep a wrong password's record): nothing
        # else may have changed, and nothing may have been signed.
        session.commit()
        session.expire_all()
        assert observe(session, scene) == before_state
        assert _counts(session) == before_counts


# --- what the table does not show -----------------------------------------------------------

def test_referral_feedback_and_varcs_are_kept(session):
    cast = make_cast(session)
    scene = STATES["submitted"](session, cast)
    review = review_evidence(session, scene.evidence, actor=cast.w.assessor, outcome="referred",
                             feedback_md="  Add the date of the call.  ",
                             varcs={"valid": True, "current": False},
                             expected_version=scene.evidence.current_version)
    assert review.feedback_md == "Add the date of the call."
    assert review.varcs == {"valid": True, "authentic": False, "reliable": False,
                            "current": False, "sufficient": False}
    assert review.version == 1


def test_trainee_decision_does_not_count_until_countersigned(session):
    cast = make_cast(session)
    scene = _trainee_decided(session, cast)

    def row(number: str):
        coverage = compute_coverage(session, scene.enrolment, date.today())
        return coverage, next(c for c in coverage.criteria if c.number == number)

    coverage, c12 = row("1.2")
    assert c12.status != "met" and coverage.met == 0
    assert c12.reasons[0].code == "awaiting_countersignature"
    assert "Tom Trainee" in c12.reasons[0].message
    assert "Waiting for a countersignature: 1.2." in unit_readiness(session, scene.enrolment)

    signature = countersign_decision(session, scene.decision, actor=cast.w.assessor,
                                     confirmation=sign_as(cast.w.assessor), **LIMITS)
    session.commit()
    coverage, c12 = row("1.2")
    assert c12.status == "met" and coverage.met == 1
    assert scene.decision.countersigned_by_id == cast.w.assessor.id
    assert scene.decision.countersignature_id == signature.id
    assert signature.content["signatures"][0]["signature_id"] == scene.decision.signature_id
    assert verify_signature(session, signature).state == "valid"


def test_sign_off_lists_every_blocker(session):
    cast = make_cast(session)
    w = cast.w
    with pytest.raises(InvalidTransition) as nothing:
        sign_off_unit(session, w.enrolment, actor=w.assessor, confirmation=sign_as(w.assessor),
                      **LIMITS)
    numbers = unit_numbers(session, w.enrolment)
    assert "Not yet met: " + ", ".join(numbers) + "." in nothing.value.message
    assert "unit declaration" in nothing.value.message

    build_unit(session, cast, skip=("2.9",), declared=False)
    with pytest.raises(InvalidTransition) as one_left:
        sign_off_unit(session, w.enrolment, actor=w.assessor, confirmation=sign_as(w.assessor),
                      **LIMITS)
    assert "Not yet met: 2.9." in one_left.value.message
    assert "unit declaration" in one_left.value.message
    assert unit_signoff(session, w.enrolment) is None


def test_trainee_unit_waits_for_countersignatures(session):
    cast = make_cast(session)
    w = cast.w
    lo1 = tuple(n for n in unit_numbers(session, w.other_enrolment) if n.startswith("1."))
    item = make_evidence(session, w.other_enrolment, w.other_learner, maps=lo1, submit=True)
    accept(session, item, w.trainee)
    decide_all(session, w.other_enrolment, w.trainee, item,
               lo2=observed(session, w.other_enrolment, w.trainee))
    declare_unit(session, w.other_enrolment, w.other_learner)
    numbers = ", ".join(unit_numbers(session, w.other_enrolment))
    with pytest.raises(InvalidTransition) as waiting:
        sign_off_unit(session, w.other_enrolment, actor=w.trainee,
                      confirmation=sign_as(w.trainee), **LIMITS)
    assert f"Waiting for a countersignature: {numbers}." in waiting.value.message


def test_full_happy_path_completes_the_enrolment(session):
    cast = make_cast(session)
    w = cast.w
    scene = build_unit(session, cast, declared=False)
    coverage = compute_coverage(session, w.enrolment, date.today())
    assert coverage.met == coverage.total == 17
    assert unit_readiness(session, w.enrolment) == [
        "The learner has not signed the unit declaration (or evidence changed since they did)."]
    declaration = declare_unit(session, w.enrolment, w.learner)
    assert unit_readiness(session, w.enrolment) == []
    signoff = sign_off_unit(session, w.enrolment, actor=w.assessor,
                            confirmation=sign_as(w.assessor), **LIMITS)
    assert w.enrolment.status == "active"
    cosign = cosign_unit(session, w.enrolment, actor=w.learner,
                         confirmation=sign_as(w.learner), **LIMITS)
    session.commit()

    fresh = Session(bind=session.get_bind())
    assert fresh.get(Enrolment, w.enrolment.id).status == "completed"
    refs = {r["signature_id"] for r in signoff.content["signatures"]}
    decision_signatures = set(fresh.scalars(select(CriterionDecision.signature_id).where(
        CriterionDecision.enrolment_id == w.enrolment.id)))
    assert refs == decision_signatures | {declaration.id}
    assert cosign.content["signatures"] == [
        {"signature_id": signoff.id, "content_hash": signoff.content_hash,
         "purpose": "unit_signoff"}]
    for signature in (signoff, cosign, declaration):
        assert signature.typed_name and signature.statement
    verdicts = verify_all(fresh)
    assert verdicts and all(v.state == "valid" for v in verdicts), [str(v) for v in verdicts]
    assert verify_chain(fresh)[1] == []
    actions = set(fresh.scalars(select(AuditEvent.action)))
    assert {"signature.unit_signoff", "signature.unit_cosign", "signature.unit_declaration",
            "signature.criterion_decision"} <= actions
    fresh.close()
    assert scene.evidence.status == "accepted"


@pytest.mark.parametrize("purpose", ["evidence_declaration", "unit_declaration", "decision",
                                     "countersignature", "unit_signoff", "unit_cosign"])
@pytest.mark.parametrize("impostor", ["password", "typed name", "both"])
def test_nobody_signs_as_someone_else(session, purpose, impostor):
    """Whoever is signed in signs as themselves: another person's password or name fails."""
    cast = make_cast(session)
    w = cast.w
    if purpose == "evidence_declaration":
        scene = STATES["draft"](session, cast)
        submit_evidence(session, scene.evidence, actor=w.learner)
        actor, other = w.learner, w.assessor

        def sign(confirmation):
            return sign_evidence_declaration(session, scene.evidence, actor=actor,
                                             confirmation=confirmation, **LIMITS)
    elif purpose == "unit_declaration":
        scene = STATES["submitted"](session, cast)
        actor, other = w.learner, w.assessor

        def sign(confirmation):
            return sign_unit_declaration(session, scene.enrolment, actor=actor,
                                         confirmation=confirmation, **LIMITS)
    elif purpose == "decision":
        scene = STATES["accepted"](session, cast)
        actor, other = w.assessor, w.learner

        def sign(confirmation):
            ids = [scene.evidence.id]
            return decide_criterion(
                session, scene.enrolment, criterion(session, "1.1"), actor=actor,
                evidence_ids=ids, note_md="", confirmation=confirmation,
                expected_state=decision_evidence_state(session, scene.enrolment, ids), **LIMITS)
    elif purpose == "countersignature":
        scene = STATES["awaiting countersignature"](session, cast)
        actor, other = w.assessor, w.trainee

        def sign(confirmation):
            return countersign_decision(session, scene.decision, actor=actor,
                                        confirmation=confirmation, **LIMITS)
    elif purpose == "unit_signoff":
        scene = STATES["ready for sign-off"](session, cast)
        actor, other = w.assessor, w.learner

        def sign(confirmation):
            return sign_off_unit(session, scene.enrolment, actor=actor,
                                 confirmation=confirmation, **LIMITS)
    else:
        scene = STATES["signed off"](session, cast)
        actor, other = w.learner, w.assessor

        def sign(confirmation):
            return cosign_unit(session, scene.enrolment, actor=actor,
                               confirmation=confirmation, **LIMITS)
    other.password_hash = hash_password(OTHER_PASSWORD)
    session.commit()
    before = _counts(session)
    password = PASSWORD if impostor == "typed name" else OTHER_PASSWORD
    name = actor.full_name if impostor == "password" else other.full_name
    with pytest.raises(ValidationFailed) as refused:
        sign(SignerConfirmation(password=password, typed_name=name))
    assert refused.value.field == ("typed_name" if impostor == "typed name" else "password")
    session.commit()
    assert _counts(session) == before

    # The actor's own password and name, typed with different spacing and case, do sign.
    typed = "  " + actor.full_name.upper().replace(" ", "   ") + " "
    signature = sign(SignerConfirmation(password=PASSWORD, typed_name=typed))
    signature = signature if isinstance(signature, Signature) else signature.signature
    assert signature.signer_id == actor.id
    assert signature.typed_name == actor.full_name.upper()
    assert verify_signature(session, signature).state == "valid"


def test_wrong_password_is_refused_recorded_and_then_throttled(session):
    cast = make_cast(session)
    scene = STATES["accepted"](session, cast)
    assessor = cast.w.assessor
    wrong = SignerConfirmation(password="not my password at all", typed_name=assessor.full_name,
                               client="203.0.113.9")
    for _ in range(LIMITS["max_failures"]):
        with pytest.raises(ValidationFailed) as refused:
            _decide(session, scene, assessor, wrong)
        assert refused.value.field == "password"
        assert "nothing was signed" in refused.value.message
        session.commit()  # as the page does, so the attempt counts
    attempts = list(session.scalars(select(LoginAttempt).where(
        LoginAttempt.email == assessor.email)))
    assert len(attempts) == LIMITS["max_failures"]
    assert all(a.succeeded is False and a.client == "sign:203.0.113.9" for a in attempts)

    with pytest.raises(Throttled):
        _decide(session, scene, assessor)  # the right password, too late
    session.commit()
    assert _counts(session)[1] == 0
    assert session.scalar(select(func.count(Signature.id)).where(
        Signature.purpose == "criterion_decision")) == 0
    # Signing and signing in share the count: the assessor cannot sign in either.
    from portfolio.auth.services import authenticate

    with pytest.raises(Throttled):
        authenticate(session, assessor.email, PASSWORD, client="198.51.100.1", **LIMITS)


def test_one_persons_failures_do_not_lock_out_another(session):
    cast = make_cast(session)
    scene = STATES["accepted"](session, cast)
    waiting = _trainee_decided(session, cast).decision
    wrong = SignerConfirmation(password="nope nope nope", typed_name="Quinn Qualified")
    for _ in range(LIMITS["max_failures"]):
        with pytest.raises(ValidationFailed):
            countersign_decision(session, waiting, actor=cast.other_assessor,
                                 confirmation=wrong, **LIMITS)
        session.commit()
    with pytest.raises(Throttled):
        countersign_decision(session, waiting, actor=cast.other_assessor,
                             confirmation=sign_as(cast.other_assessor), **LIMITS)
    # Another person is not locked out by someone else's failures.
    assert _decide(session, scene, cast.w.assessor) == "met"


def test_stale_page_signs_nothing(session):
    cast = make_cast(session)
    w = cast.w
    scene = STATES["accepted"](session, cast)
    ids = [scene.evidence.id]
    opened = decision_evidence_state(session, w.enrolment, ids)  # the assessor opens the page
    # Meanwhile the evidence is referred, revised, resubmitted and accepted again.
    refer(session, scene.evidence, w.assessor)
    revise(session, scene.evidence, w.learner)
    resubmit(session, scene.evidence, w.learner)
    accept(session, scene.evidence, w.assessor)
    session.commit()
    before = _counts(session)
    with pytest.raises(InvalidTransition) as stale:
        decide_criterion(session, w.enrolment, criterion(session, "1.1"), actor=w.assessor,
                         evidence_ids=ids, note_md="", confirmation=sign_as(w.assessor),
                         expected_state=opened, **LIMITS)
    assert "nothing was signed" in stale.value.message
    session.commit()
    assert _counts(session) == before
    # Reloaded, the page signs version 2.
    decision = decide(session, w.enrolment, w.assessor, "1.1", [scene.evidence])
    assert decision.evidence == [{"evidence_id": scene.evidence.id, "version": 2}]


def test_review_of_a_stale_version_is_refused(session):
    cast = make_cast(session)
    scene = STATES["submitted"](session, cast)
    with pytest.raises(InvalidTransition):
        review_evidence(session, scene.evidence, actor=cast.w.assessor, outcome="accepted",
                        feedback_md="", varcs=VARCS_ALL, expected_version=2)
    assert scene.evidence.status == "submitted"


def _live(session: Session, enrolment_id: int) -> list[CriterionDecision]:
    return list(session.scalars(select(CriterionDecision).where(
        CriterionDecision.enrolment_id == enrolment_id,
        CriterionDecision.status.in_(("met", "awaiting_countersignature")))))


def _decision_signatures(session: Session) -> int:
    return session.scalar(select(func.count(Signature.id)).where(
        Signature.purpose == "criterion_decision"))


def _open(app, enrolment_id: int, evidence_id: int):
    s = app.extensions["portfolio.db"].sessionmaker()
    enrolment = s.get(Enrolment, enrolment_id)
    assessor = s.get(User, enrolment.assessor_id)
    evidence = s.get(Evidence, evidence_id)
    state = decision_evidence_state(s, enrolment, [evidence_id])
    return s, enrolment, assessor, evidence, state


def _decide_in(s: Session, enrolment: Enrolment, assessor: User, evidence: Evidence, state: str):
    return decide_criterion(s, enrolment, criterion(s, "1.1"), actor=assessor,
                            evidence_ids=[evidence.id], note_md="", confirmation=sign_as(assessor),
                            expected_state=state, **LIMITS)


def test_double_sign_from_two_sessions_keeps_one_decision(app, session):
    cast = make_cast(session)
    scene = STATES["accepted"](session, cast)
    first = _open(app, scene.enrolment.id, scene.evidence.id)
    second = _open(app, scene.enrolment.id, scene.evidence.id)  # both pages open at once
    try:
        _decide_in(*first)
        first[0].commit()
        with pytest.raises(InvalidTransition):
            _decide_in(*second)
        second[0].commit()  # the page commits a refusal
    finally:
        first[0].close()
        second[0].close()
    session.expire_all()
    assert len(_live(session, scene.enrolment.id)) == 1
    assert _decision_signatures(session) == 1


def test_double_sign_past_the_check_is_stopped_by_the_index(app, session, monkeypatch):
    """Both requests pass the "already decided?" check before either commits: the unique
    index refuses the second, which signs nothing."""
    cast = make_cast(session)
    scene = STATES["accepted"](session, cast)
    first = _open(app, scene.enrolment.id, scene.evidence.id)
    second = _open(app, scene.enrolment.id, scene.evidence.id)
    try:
        _decide_in(*first)
        first[0].commit()
        monkeypatch.setattr(assessment, "live_decisions", lambda *args: [])
        with pytest.raises(InvalidTransition) as refused:
            _decide_in(*second)
        assert "just been decided" in refused.value.message
        second[0].commit()  # the page commits a refusal: nothing else may be left behind
    finally:
        first[0].close()
        second[0].close()
    monkeypatch.undo()
    session.expire_all()
    assert len(_live(session, scene.enrolment.id)) == 1
    assert _decision_signatures(session) == 1
    assert all(v.state == "valid" for v in verify_all(session))


def test_truly_concurrent_double_sign(app, session, monkeypatch, db_kind):
    """Two threads, each with its own session, sign the same criterion at the same moment."""
    cast = make_cast(session)
    scene = STATES["accepted"](session, cast)
    barrier = threading.Barrier(2, timeout=20)
    real_confirm = assessment.confirm_signer

    def confirm_then_wait(*args, **kwargs):
        # Both requests have passed every check; now they race to record the decision.
        barrier.wait()
        return real_confirm(*args, **kwargs)

    monkeypatch.setattr(assessment, "confirm_signer", confirm_then_wait)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def request() -> None:
        s, enrolment, assessor, evidence, state = _open(app, scene.enrolment.id,
                                                        scene.evidence.id)
        try:
            _decide_in(s, enrolment, assessor, evidence, state)
            s.commit()
            outcomes.append("signed")
        except InvalidTransition as exc:
            s.commit()  # as the page does; the failed insert must not spoil the transaction
            outcomes.append("refused: " + exc.message)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            s.rollback()
        finally:
            s.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(outcomes) == [
        "refused: Criterion 1.1 has just been decided by another request; nothing more was "
        "signed.", "signed"]
    session.expire_all()
    assert len(_live(session, scene.enrolment.id)) == 1
    assert _decision_signatures(session) == 1


def test_revising_evidence_invalidates_the_decision_but_keeps_it(session):
    cast = make_cast(session)
    w = cast.w
    scene = _decided(session, cast)
    decision = scene.decision
    untouched = make_evidence(session, w.enrolment, w.learner, title="Call log",
                              maps=("1.2",), submit=True)
    accept(session, untouched, w.assessor)
    other_decision = decide(session, w.enrolment, w.assessor, "1.2", [untouched])
    session.commit()
    old_signature = session.get(Signature, decision.signature_id)
    signatures_before = session.scalar(select(func.count(Signature.id)))

    refer(session, scene.evidence, w.assessor)  # accepted -> referred is allowed
    session.commit()
    assert decision.status == "met"  # referral alone does not end the decision
    revise(session, scene.evidence, w.learner)
    session.commit()

    fresh = Session(bind=session.get_bind())
    ended = fresh.get(CriterionDecision, decision.id)
    assert ended.status == "invalidated"
    assert ended.ended_at is not None
    assert "changed after signing" in ended.ended_reason
    assert "version 1 → 2" in ended.ended_reason
    assert "Handling a billing complaint" in ended.ended_reason
    kept = fresh.get(Signature, old_signature.id)
    assert kept is not None and kept.invalidated_at is not None
    assert kept.content_hash == old_signature.content_hash
    verdict = verify_signature(fresh, kept)
    assert verdict.state == "invalidated", str(verdict)
    assert fresh.scalar(select(func.count(Signature.id))) == signatures_before
    # The learner's declaration over version 1 is invalidated too, not broken.
    declarations = list(fresh.scalars(select(Signature).where(
        Signature.purpose == "evidence_declaration", Signature.subject_id == scene.evidence.id)))
    assert [verify_signature(fresh, s).state for s in declarations] == ["invalidated"]

    coverage = compute_coverage(fresh, fresh.get(Enrolment, w.enrolment.id), date.today())
    c11 = next(c for c in coverage.criteria if c.number == "1.1")
    c12 = next(c for c in coverage.criteria if c.number == "1.2")
    assert c11.status != "met"
    assert c11.reasons[0].code == "decision_invalidated"
    assert "version 1 → 2" in c11.reasons[0].message
    # A decision on other evidence is untouched.
    assert c12.status == "met"
    assert fresh.get(CriterionDecision, other_decision.id).status == "met"
    assert verify_signature(fresh, fresh.get(Signature, other_decision.signature_id)).state \
        == "valid"
    fresh.close()

    # Resubmitted and accepted, the criterion can be decided again; both signatures are kept.
    resubmit(session, scene.evidence, w.learner)
    accept(session, scene.evidence, w.assessor)
    again = decide(session, w.enrolment, w.assessor, "1.1", [scene.evidence])
    session.commit()
    assert again.status == "met" and again.signature_id != old_signature.id
    states = {v.signature_id: v.state for v in verify_all(session)}
    assert states[old_signature.id] == "invalidated"
    assert states[again.signature_id] == "valid"


def test_revision_invalidates_a_countersignature_too(session):
    cast = make_cast(session)
    w = cast.w
    scene = _trainee_countersigned(session, cast)
    countersignature_id = scene.decision.countersignature_id
    refer(session, scene.evidence, w.trainee)
    revise(session, scene.evidence, w.other_learner)
    session.commit()
    assert scene.decision.status == "invalidated"
    states = {v.signature_id: v.state for v in verify_all(session)}
    assert states[countersignature_id] == "invalidated"
    assert states[scene.decision.signature_id] == "invalidated"
    assert "broken" not in states.values()


def test_revising_any_evidence_after_sign_off_invalidates_it(session):
    cast = make_cast(session)
    w = cast.w
    scene = _signed_off(session, cast)
    signoff = unit_signoff(session, w.enrolment)
    assert signoff is not None
    other = scene.extra["other"]  # accepted, but cited by no decision

    refer(session, other, w.assessor)
    revise(session, other, w.learner)
    session.commit()

    session.expire_all()
    assert unit_signoff(session, w.enrolment) is None
    assert verify_signature(session, signoff).state == "invalidated"
    assert "Complaints procedure notes" in signoff.invalidated_reason
    declaration = session.scalar(select(Signature).where(
        Signature.purpose == "unit_declaration"))
    assert verify_signature(session, declaration).state == "invalidated"
    # The decisions did not rely on that item and stand; the unit needs declaring again.
    assert len(_live(session, w.enrolment.id)) == 17
    assert unit_readiness(session, w.enrolment) == [
        "The learner has not signed the unit declaration (or evidence changed since they did)."]
    with pytest.raises(InvalidTransition):
        cosign_unit(session, w.enrolment, actor=w.learner, confirmation=sign_as(w.learner),
                    **LIMITS)
    assert w.enrolment.status == "active"

    # Resubmitted, accepted and declared again, the unit can be signed off a second time.
    resubmit(session, other, w.learner)
    accept(session, other, w.assessor)
    declare_unit(session, w.enrolment, w.learner)
    second = sign_off_unit(session, w.enrolment, actor=w.assessor,
                           confirmation=sign_as(w.assessor), **LIMITS)
    cosign_unit(session, w.enrolment, actor=w.learner, confirmation=sign_as(w.learner),
                **LIMITS)
    session.commit()
    assert w.enrolment.status == "completed"
    states = {v.signature_id: v.state for v in verify_all(session)}
    assert states[signoff.id] == "invalidated" and states[second.id] == "valid"



def test_revising_evidence_of_a_completed_unit_reopens_it(session):
    cast = make_cast(session)
    w = cast.w
    scene = _completed(session, cast)
    assert w.enrolment.status == "completed"
    refer(session, scene.extra["other"], w.assessor)
    revise(session, scene.extra["other"], w.learner)
    session.commit()
    session.expire_all()
    # The completion rested on a sign-off and co-sign that no longer stand.
    assert w.enrolment.status == "active"
    states = {v.signature_id: v.state for v in verify_all(session)}
    for purpose in ("unit_signoff", "unit_cosign", "unit_declaration"):
        signature = session.scalar(select(Signature).where(Signature.purpose == purpose))
        assert states[signature.id] == "invalidated"
    event = session.scalar(select(AuditEvent).where(
        AuditEvent.action == "signature.invalidated"))
    assert event.detail["enrolment_reopened"] is True
