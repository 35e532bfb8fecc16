"""Enrol learners on units and assign their assessor and IQA."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.enrolments import states
from portfolio.errors import PermissionDenied, ValidationFailed
from portfolio.models import Enrolment, Role, Unit, User
from portfolio.permissions import can_manage_users


def _check_people(learner: User, assessor: User, iqa: User | None) -> None:
    if not learner.has_role(Role.LEARNER):
        raise ValidationFailed(f"{learner.full_name} does not have the learner role.",
                               field="learner_id")
    if not assessor.has_role(Role.ASSESSOR) or not assessor.is_active:
        raise ValidationFailed(f"{assessor.full_name} is not an active assessor.",
                               field="assessor_id")
    if assessor.id == learner.id:
        raise ValidationFailed("A learner cannot be their own assessor.", field="assessor_id")
    if iqa is not None:
        if not iqa.has_role(Role.IQA) or not iqa.is_active:
            raise ValidationFailed(f"{iqa.full_name} is not an active internal quality assurer.",
                                   field="iqa_id")
        if iqa.id == assessor.id:
            raise ValidationFailed(
                "The IQA must be a different person from the assessor: nobody samples their "
                "own assessment decisions.",
                field="iqa_id",
            )
        if iqa.id == learner.id:
            raise ValidationFailed("A learner cannot quality-assure their own work.",
                                   field="iqa_id")
    centres = {learner.centre_id, assessor.centre_id} | ({iqa.centre_id} if iqa else set())
    if len(centres) != 1:
        raise ValidationFailed("Learner, assessor and IQA must belong to the same centre.")


def _check_dates(start_on: date, planned_end_on: date) -> None:
    if planned_end_on < start_on:
        raise ValidationFailed("The planned end date must be on or after the start date.",
                               field="planned_end_on")


def _clean(text: str, field: str, label: str) -> str:
    cleaned = " ".join((text or "").split())
    if not cleaned or len(cleaned) > 200:
        raise ValidationFailed(f"Enter the {label}.", field=field)
    return cleaned


def enrol_learner(
    session: Session,
    *,
    learner: User,
    unit: Unit,
    assessor: User,
    iqa: User | None,
    start_on: date,
    planned_end_on: date,
    employer: str,
    workplace: str,
    actor: User | None = None,
) -> Enrolment:
    """Enrol a learner on a unit with an assessor and (optionally) an IQA.

    :raises PermissionDenied: the actor does not administer the learner's centre.
    :raises ValidationFailed: wrong roles, same person twice, bad dates, already enrolled.
    """
    if actor is not None and not can_manage_users(actor, learner.centre_id):
        raise PermissionDenied("Only an admin of the learner's centre can enrol them.")
    _check_people(learner, assessor, iqa)
    _check_dates(start_on, planned_end_on)
    existing = session.scalar(
        select(Enrolment.id).where(Enrolment.learner_id == learner.id, Enrolment.unit_id == unit.id)
    )
    if existing is not None:
        raise ValidationFailed(f"{learner.full_name} is already enrolled on this unit.",
                               field="unit_id")
    enrolment = Enrolment(
        learner_id=learner.id,
        unit_id=unit.id,
        assessor_id=assessor.id,
        iqa_id=iqa.id if iqa else None,
        start_on=start_on,
        planned_end_on=planned_end_on,
        employer=_clean(employer, "employer", "employer"),
        workplace=_clean(workplace, "workplace", "workplace"),
    )
    session.add(enrolment)
    session.flush()
    record_event(
        session,
        action="enrolment.create",
        subject_type="enrolment",
        subject_id=enrolment.id,
        actor=actor,
        actor_role=Role.ADMIN.value if actor else None,
        learner_id=learner.id,
        centre_id=learner.centre_id,
        detail={"unit": unit.reference, "assessor_id": assessor.id,
                "iqa_id": iqa.id if iqa else None},
    )
    return enrolment


def update_enrolment(
    session: Session,
    enrolment: Enrolment,
    *,
    actor: User,
    assessor: User,
    iqa: User | None,
    start_on: date,
    planned_end_on: date,
    employer: str,
    workplace: str,
    status: str,
) -> Enrolment:
    """Reassign the assessor or IQA, or change dates, workplace or status.

    :raises PermissionDenied: the actor does not administer the learner's centre.
    """
    if not can_manage_users(actor, enrolment.centre_id):
        raise PermissionDenied("Only an admin of the learner's centre can change this enrolment.")
    _check_people(enrolment.learner, assessor, iqa)
    _check_dates(start_on, planned_end_on)
    chosen = states.parse_status(status)
    before = {"assessor_id": enrolment.assessor_id, "iqa_id": enrolment.iqa_id,
              "status": enrolment.status}
    enrolment.assessor_id = assessor.id
    enrolment.iqa_id = iqa.id if iqa else None
    enrolment.start_on = start_on
    enrolment.planned_end_on = planned_end_on
    enrolment.employer = _clean(employer, "employer", "employer")
    enrolment.workplace = _clean(workplace, "workplace", "workplace")
    states.set_by_admin(enrolment, chosen)
    session.flush()
    record_event(
        session,
        action="enrolment.update",
        subject_type="enrolment",
        subject_id=enrolment.id,
        actor=actor,
        actor_role=Role.ADMIN.value,
        learner_id=enrolment.learner_id,
        detail={"before": before,
                "after": {"assessor_id": assessor.id, "iqa_id": enrolment.iqa_id,
                          "status": status}},
    )
    return enrolment
