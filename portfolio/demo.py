"""The demo centre: an admin, two assessors (one trainee), an IQA, an EQA, three learners."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.auth.services import create_user, get_or_create_centre
from portfolio.demo_portfolio import (
    seed_awaiting_countersignature,
    seed_portfolio,
    seed_signed_off,
)
from portfolio.enrolments.services import enrol_learner
from portfolio.errors import NotFound
from portfolio.evidence.storage import UploadBatch
from portfolio.models import Enrolment, Unit, User

DEMO_CENTRE = "Northgate Skills Centre (demo)"
DEMO_UNIT = "R/506/2151"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    full_name: str
    roles: tuple[str, ...]
    assessor_status: str | None = None


PEOPLE = (
    DemoPerson("admin@demo.example", "Priya Raman", ("admin",)),
    DemoPerson("assessor@demo.example", "Daniel Okafor", ("assessor",), "qualified"),
    DemoPerson("trainee@demo.example", "Grace Whitfield", ("assessor",), "trainee"),
    DemoPerson("iqa@demo.example", "Margaret Lewis", ("iqa",)),
    DemoPerson("eqa@demo.example", "Tomasz Wójcik", ("eqa",)),
    DemoPerson("learner@demo.example", "Aisha Khan", ("learner",)),
    DemoPerson("ben@demo.example", "Ben Carter", ("learner",)),
    DemoPerson("sofia@demo.example", "Sofia Marín", ("learner",)),
)

# (learner, assessor, employer, workplace)
ENROLMENTS = (
    ("learner@demo.example", "assessor@demo.example", "Brightwater Energy Ltd",
     "Customer contact centre, Leeds"),
    ("ben@demo.example", "trainee@demo.example", "Brightwater Energy Ltd",
     "Complaints resolution team, Leeds"),
    ("sofia@demo.example", "assessor@demo.example", "Harbour Home Stores",
     "Customer service desk, Hull store"),
)


def demo_password(instance_path: str) -> str:
    """Return this installation's demo password, generating it (mode 0600) on first use."""
    path = Path(instance_path) / "demo_password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = "demo-" + secrets.token_urlsafe(9)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return password


def seed_demo(session: Session, password: str, *, today: date | None = None,
              batch: UploadBatch | None = None) -> list[DemoPerson]:
    """Create the demo centre if missing; a second run changes nothing.

    :raises NotFound: Unit 40 has not been loaded (run `portfolio criteria load`).
    """
    today = today or date.today()
    unit = session.scalar(select(Unit).where(Unit.reference == DEMO_UNIT))
    if unit is None:
        raise NotFound("Unit R/506/2151 is not loaded yet: run `portfolio criteria load` first.")
    centre = get_or_create_centre(session, DEMO_CENTRE)
    users: dict[str, User] = {}
    for person in PEOPLE:
        user = session.scalar(select(User).where(User.email == person.email))
        if user is None:
            user = create_user(session, centre=centre, email=person.email,
                               full_name=person.full_name, password=password,
                               roles=person.roles, assessor_status=person.assessor_status)
        users[person.email] = user
    start = date(today.year - (1 if today.month < 3 else 0), (today.month - 3) % 12 + 1, 1)
    for learner_email, assessor_email, employer, workplace in ENROLMENTS:
        learner = users[learner_email]
        exists = session.scalar(select(Enrolment.id).where(
            Enrolment.learner_id == learner.id, Enrolment.unit_id == unit.id))
        if exists is None:
            enrol_learner(session, learner=learner, unit=unit, assessor=users[assessor_email],
                          iqa=users["iqa@demo.example"], start_on=start,
                          planned_end_on=date(start.year + 1, start.month, 1),
                          employer=employer, workplace=workplace)
    if batch is not None:
        learner = users["learner@demo.example"]
        enrolment = session.scalar(select(Enrolment).where(
            Enrolment.learner_id == learner.id, Enrolment.unit_id == unit.id))
        seed_portfolio(session, batch, enrolment, learner, users["assessor@demo.example"], today,
                       password)
        for email, seed in (("sofia@demo.example", "signed_off"), ("ben@demo.example", "trainee")):
            person = users[email]
            enrolment = session.scalar(select(Enrolment).where(
                Enrolment.learner_id == person.id, Enrolment.unit_id == unit.id))
            if seed == "signed_off":
                seed_signed_off(session, batch, enrolment, person,
                                users["assessor@demo.example"], password, today)
            else:
                seed_awaiting_countersignature(session, enrolment, person,
                                               users["trainee@demo.example"], password, today)
    seed_sampling(session, users, unit, today, password)
    seed_eqa_pack(session, users, unit, today)
    return list(PEOPLE)


def seed_sampling(session: Session, users: dict[str, User], unit: Unit, today: date,
                  password: str) -> None:
    """The IQA's plan for the last three months, one sample signed with an open action (once)."""
    from datetime import timedelta

    from portfolio.assessment.services import SignerConfirmation
    from portfolio.models import SamplingPlan
    from portfolio.sampling import services as sampling

    iqa, assessor = users["iqa@demo.example"], users["assessor@demo.example"]
    if session.scalar(select(SamplingPlan.id).where(SamplingPlan.iqa_id == iqa.id)):
        return
    if not sampling.sampleable_decisions(session, iqa, unit.id):
        return  # no signed decisions yet (the demo without a portfolio)
    sampling.set_profile(session, actor=iqa, assessor=assessor, status="experienced",
                         override_pct=None, reason="Qualified assessor for six years; no "
                         "disagreements at the last two samples.")
    plan = sampling.generate_plan(session, iqa=iqa, unit=unit,
                                  start=today - timedelta(days=90), end=today)
    item = next((i for i in sampling.live_items(plan) if i.decision.decided_by_id == assessor.id),
                None)
    if item is None:
        return
    sample = sampling.start_sample(session, item, actor=iqa)
    sampling.record_outcome(
        session, sample, actor=iqa, outcome="agree_with_actions",
        rationale_md="The evidence is valid, authentic and current, and it is sufficient for "
                     "the criterion. The decision note does not say which part of the evidence "
                     "shows the criterion, which the EQA will want to see.",
        actions=[sampling.ActionInput("Add to your decision notes where in the evidence each "
                                      "criterion is shown (paragraph or minute).",
                                      today + timedelta(days=14))],
        confirmation=SignerConfirmation(password=password, typed_name=iqa.full_name),
        max_failures=5, lockout_minutes=15, today=today)


def seed_eqa_pack(session: Session, users: dict[str, User], unit: Unit, today: date) -> None:
    """Share Sofia's signed-off portfolio with the demo EQA for 30 days (once)."""
    from datetime import timedelta

    from portfolio.eqa.services import PackInput, create_pack
    from portfolio.models import EqaPack, EqaPackEnrolment

    sofia = session.scalar(select(Enrolment).where(
        Enrolment.learner_id == users["sofia@demo.example"].id, Enrolment.unit_id == unit.id))
    eqa = users["eqa@demo.example"]
    shared = session.scalar(select(EqaPack.id).join(EqaPackEnrolment).where(
        EqaPack.eqa_id == eqa.id, EqaPackEnrolment.enrolment_id == sofia.id))
    if shared is None:
        create_pack(session, PackInput(
            eqa_id=eqa.id, enrolment_ids=[sofia.id], title="Unit 40 external sample",
            note="Sofia Marín's signed-off portfolio, as requested for the standards "
                 "verification visit.", valid_from=today, valid_to=today + timedelta(days=30)),
            actor=users["admin@demo.example"], today=today)
