"""Factory functions for test data: plain calls to the real services, no magic."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.auth.services import create_user, get_or_create_centre
from portfolio.criteria.services import load_unit_file
from portfolio.criteria.unitfile import UnitFile, parse_file
from portfolio.enrolments.services import enrol_learner
from portfolio.evidence.services import EvidenceInput, MappingInput, add_evidence, set_mappings
from portfolio.evidence.storage import FileStore, StagedFile
from portfolio.models import Centre, Criterion, Enrolment, Evidence, Unit, User

PASSWORD = "correct horse battery staple"
CRITERIA_DIR = Path(__file__).resolve().parent.parent / "criteria"
UNIT40_FILE = CRITERIA_DIR / "unit-40-resolve-customers-complaints.toml"
_counter = itertools.count(1)


@lru_cache(maxsize=1)
def unit40_spec() -> UnitFile:
    return parse_file(UNIT40_FILE)


def load_unit40(session: Session) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.reference == "R/506/2151"))
    if unit is None:
        load_unit_file(session, unit40_spec())
        unit = session.scalar(select(Unit).where(Unit.reference == "R/506/2151"))
    return unit


def make_centre(session: Session, name: str | None = None) -> Centre:
    return get_or_create_centre(session, name or f"Centre {next(_counter)}")


def make_user(
    session: Session,
    centre: Centre,
    *roles: str,
    email: str | None = None,
    name: str | None = None,
    assessor_status: str | None = None,
    password: str = PASSWORD,
) -> User:
    n = next(_counter)
    return create_user(
        session, centre=centre, email=email or f"person{n}@example.org",
        full_name=name or f"Person {n}", password=password, roles=roles or ("learner",),
        assessor_status=assessor_status,
    )


def make_enrolment(
    session: Session,
    learner: User,
    assessor: User,
    iqa: User | None = None,
    unit: Unit | None = None,
    employer: str = "Acme Utilities",
) -> Enrolment:
    return enrol_learner(
        session, learner=learner, unit=unit or load_unit40(session), assessor=assessor, iqa=iqa,
        start_on=date(2026, 1, 5), planned_end_on=date(2026, 12, 18), employer=employer,
        workplace="Contact centre",
    )


TINY_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]"
            b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def stage_bytes(store_root: str | Path | FileStore, data: bytes, filename: str) -> StagedFile:
    """Stage file content exactly as an upload would be, and place it in the store (a local
    store's folder, or a `FileStore` on any backend)."""
    import io

    store = store_root if isinstance(store_root, FileStore) else FileStore(Path(store_root))
    staged = store.stage(io.BytesIO(data), filename, 50 * 1024 * 1024)
    store.place(staged)
    return staged


def criterion(session: Session, number: str) -> Criterion:
    return session.scalar(select(Criterion).where(Criterion.number == number))


def make_evidence(
    session: Session,
    enrolment: Enrolment,
    actor: User,
    kind: str = "reflective_account",
    *,
    title: str = "Handling a billing complaint",
    body: str = "I listened to the customer and checked the account.",
    activity_on: date | None = None,
    details: dict | None = None,
    files: list[StagedFile] | None = None,
    maps: tuple[str, ...] = (),
    simulated: bool = False,
    submit: bool = False,
) -> Evidence:
    evidence = add_evidence(
        session, actor=actor, enrolment=enrolment, kind=kind,
        data=EvidenceInput(title=title, activity_on=activity_on or date.today(),
                           body_md=body, details=details or {}, is_simulated=simulated,
                           personal_data_confirmed=True),
        files=files or [], today=date.today(),
    )
    if maps:
        set_mappings(session, evidence, actor=actor,
                     wanted=[MappingInput(criterion(session, n).id) for n in maps])
    if submit:
        from portfolio.evidence.services import submit_evidence

        submit_evidence(session, evidence, actor=actor)
        if actor.id == enrolment.learner_id:
            from portfolio.assessment.services import sign_evidence_declaration

            sign_evidence_declaration(session, evidence, actor=actor,
                                      confirmation=sign_as(actor), **LIMITS)
    session.flush()
    return evidence


@dataclass
class World:
    """Two centres with every role, and enrolments crossing nothing they should not."""

    unit: Unit
    admin: User
    assessor: User
    trainee: User
    iqa: User
    eqa: User
    learner: User
    other_learner: User
    enrolment: Enrolment
    other_enrolment: Enrolment
    other_admin: User
    foreign_learner: User
    foreign_enrolment: Enrolment
    evidence: Evidence | None = None  # the learner's: read, revise and map
    evidence_to_submit: Evidence | None = None
    evidence_to_withdraw: Evidence | None = None
    file_id: int | None = None
    trainee_decision_id: int | None = None
    witness_request_id: int | None = None
    witness_token: str | None = None
    witness_token_to_decline: str | None = None

    def by_role(self) -> dict[str, User]:
        return {"admin": self.admin, "assessor": self.assessor, "trainee": self.trainee,
                "iqa": self.iqa, "eqa": self.eqa, "learner": self.learner}


def make_world(session: Session, store_root: str | Path | FileStore | None = None) -> World:
    unit = load_unit40(session)
    centre = make_centre(session, "Main Centre")
    admin = make_user(session, centre, "admin", email="admin@example.org", name="Ada Admin")
    assessor = make_user(session, centre, "assessor", email="assessor@example.org",
                         name="Asha Assessor", assessor_status="qualified")
    trainee = make_user(session, centre, "assessor", email="trainee@example.org",
                        name="Tom Trainee", assessor_status="trainee")
    iqa = make_user(session, centre, "iqa", email="iqa@example.org", name="Ivy Iqa")
    eqa = make_user(session, centre, "eqa", email="eqa@example.org", name="Eli Eqa")
    learner = make_user(session, centre, "learner", email="learner@example.org",
                        name="Lee Learner")
    other_learner = make_user(session, centre, "learner", email="other@example.org",
                              name="Olu Other")
    enrolment = make_enrolment(session, learner, assessor, iqa, unit)
    other_enrolment = make_enrolment(session, other_learner, trainee, None, unit)
    far = make_centre(session, "Far Centre")
    other_admin = make_user(session, far, "admin", email="far-admin@example.org")
    far_assessor = make_user(session, far, "assessor", email="far-assessor@example.org")
    foreign_learner = make_user(session, far, "learner", email="far-learner@example.org")
    foreign_enrolment = make_enrolment(session, foreign_learner, far_assessor, None, unit)
    world = World(unit, admin, assessor, trainee, iqa, eqa, learner, other_learner, enrolment,
                  other_enrolment, other_admin, foreign_learner, foreign_enrolment)
    if store_root is not None:
        pdf = stage_bytes(store_root, TINY_PDF, "complaint-letter.pdf")
        world.evidence = make_evidence(session, enrolment, learner, "work_product",
                                       title="Reply letter", body="", files=[pdf],
                                       maps=("2.8",))
        world.evidence_to_submit = make_evidence(session, enrolment, learner, maps=("1.3",))
        world.evidence_to_withdraw = make_evidence(session, enrolment, learner)
        world.file_id = world.evidence.versions[0].files[0].id
        accepted = make_evidence(session, other_enrolment, other_learner, maps=("1.2",),
                                 submit=True)
        accept(session, accepted, trainee)
        world.trainee_decision_id = decide(session, other_enrolment, trainee, "1.2",
                                           [accepted]).id
        request, world.witness_token = ask_witness(session, enrolment, learner)
        world.witness_request_id = request.id
        _other, world.witness_token_to_decline = ask_witness(session, enrolment, learner,
                                                             name="Pat Second")
    session.commit()
    return world


def ask_witness(session: Session, enrolment: Enrolment, actor: User, *,
                name: str = "Rachel Osei", email: str = "rachel.osei@work.example",
                numbers: tuple[str, ...] = ("2.2", "2.9"), draft: str = "",
                link_days: int = 14):
    from portfolio.witness.services import RequestInput, request_testimony

    return request_testimony(session, enrolment, actor=actor, data=RequestInput(
        witness_name=name, witness_email=email, witness_role="Team leader",
        organisation="Acme Utilities", relationship="Line manager",
        activity="Handled a complaint about a double payment, start to finish.",
        activity_on=date.today(), activity_place="Contact centre",
        criterion_ids=[criterion(session, n).id for n in numbers], draft_md=draft),
        today=date.today(), link_days=link_days)


def accept(session: Session, evidence: Evidence, assessor: User) -> None:
    from portfolio.assessment.services import review_evidence

    review_evidence(session, evidence, actor=assessor, outcome="accepted", feedback_md="",
                    varcs={k: True for k in ("valid", "authentic", "reliable", "current",
                                             "sufficient")},
                    expected_version=evidence.current_version)


def sign_as(user: User) -> object:
    from portfolio.assessment.services import SignerConfirmation

    return SignerConfirmation(password=PASSWORD, typed_name=user.full_name)


LIMITS = {"max_failures": 5, "lockout_minutes": 15}


def decide(session: Session, enrolment: Enrolment, assessor: User, number: str,
           evidence: list[Evidence]):
    from portfolio.assessment.services import decide_criterion, decision_evidence_state

    ids = [e.id for e in evidence]
    return decide_criterion(session, enrolment, criterion(session, number), actor=assessor,
                            evidence_ids=ids, note_md="", confirmation=sign_as(assessor),
                            expected_state=decision_evidence_state(session, enrolment, ids),
                            **LIMITS)


def make_eqa_pack(session: Session, world: World, *, days: int = 30, start_in: int = 0,
                  enrolments: list[Enrolment] | None = None, title: str = "EQA visit sample"):
    """An EQA access pack for world.eqa over world.enrolment (or the given enrolments)."""
    from datetime import timedelta

    from portfolio.eqa.services import PackInput, create_pack

    today = date.today()
    pack = create_pack(session, PackInput(
        eqa_id=world.eqa.id, enrolment_ids=[e.id for e in (enrolments or [world.enrolment])],
        title=title, note="Please sample the **complaint** evidence.",
        valid_from=today + timedelta(days=start_in),
        valid_to=today + timedelta(days=start_in + days)), actor=world.admin, today=today)
    session.flush()
    return pack


def bypass_audit_guard(session: Session, db_kind: str) -> None:
    """Act as someone with direct database access: drop the append-only triggers' protection."""
    from sqlalchemy import text

    if db_kind == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
