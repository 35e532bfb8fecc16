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
from portfolio.criteria.files import UnitFile, parse_file
from portfolio.criteria.services import load_unit_file
from portfolio.enrolments.services import enrol_learner
from portfolio.models import Centre, Enrolment, Unit, User

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

    def by_role(self) -> dict[str, User]:
        return {"admin": self.admin, "assessor": self.assessor, "trainee": self.trainee,
                "iqa": self.iqa, "eqa": self.eqa, "learner": self.learner}


def make_world(session: Session) -> World:
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
    session.commit()
    return World(unit, admin, assessor, trainee, iqa, eqa, learner, other_learner, enrolment,
                 other_enrolment, other_admin, foreign_learner, foreign_enrolment)
