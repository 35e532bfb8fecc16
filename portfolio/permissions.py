"""Who may do what: pure functions of a user and the object concerned, tested as a table.

Services call these, so the pages, the API and the CLI apply the same rules. The list queries
in `portfolio.enrolments.queries` apply the same rules in SQL; a test checks the two agree.
"""

from __future__ import annotations

from typing import Protocol

from portfolio.models.users import Role


class Person(Protocol):
    id: int
    centre_id: int
    is_active: bool

    def has_role(self, role: Role) -> bool: ...


class EnrolmentLike(Protocol):
    learner_id: int
    assessor_id: int
    iqa_id: int | None

    @property
    def centre_id(self) -> int: ...


def is_admin_of(user: Person, centre_id: int) -> bool:
    """True when the user administers the given centre."""
    return user.is_active and user.has_role(Role.ADMIN) and user.centre_id == centre_id


def can_view_unit(user: Person) -> bool:
    """Any signed-in person may read a unit's specification and guidance (it is public)."""
    return user.is_active


def can_view_enrolment(user: Person, enrolment: EnrolmentLike) -> bool:
    """The learner, their assigned assessor and IQA, and the centre's admins."""
    if not user.is_active:
        return False
    if enrolment.learner_id == user.id and user.has_role(Role.LEARNER):
        return True
    if enrolment.assessor_id == user.id and user.has_role(Role.ASSESSOR):
        return True
    if enrolment.iqa_id == user.id and user.has_role(Role.IQA):
        return True
    return is_admin_of(user, enrolment.centre_id)


def can_assess(user: Person, enrolment: EnrolmentLike) -> bool:
    """Only the assessor assigned to the enrolment makes assessment decisions on it."""
    return (
        user.is_active
        and user.has_role(Role.ASSESSOR)
        and enrolment.assessor_id == user.id
        and enrolment.learner_id != user.id
    )


def can_sample(user: Person, enrolment: EnrolmentLike) -> bool:
    """The assigned IQA samples, but never an enrolment they assess (or their own)."""
    return (
        user.is_active
        and user.has_role(Role.IQA)
        and enrolment.iqa_id == user.id
        and enrolment.assessor_id != user.id
        and enrolment.learner_id != user.id
    )


def can_manage_users(user: Person, centre_id: int) -> bool:
    """Admins manage the people and enrolments of their own centre only."""
    return is_admin_of(user, centre_id)


def can_manage_token(user: Person, token_user_id: int) -> bool:
    """People manage their own API tokens."""
    return user.is_active and user.id == token_user_id


def can_add_evidence(user: Person, enrolment: EnrolmentLike, added_by: tuple[str, ...]) -> bool:
    """Learners add to their own portfolio; the assigned assessor adds what assessors record."""
    if not user.is_active:
        return False
    if "learner" in added_by and enrolment.learner_id == user.id and user.has_role(Role.LEARNER):
        return True
    return "assessor" in added_by and can_assess(user, enrolment)


def can_change_evidence(user: Person, enrolment: EnrolmentLike, created_by_id: int) -> bool:
    """Only whoever added an item changes it: the learner, or the assessor who recorded it."""
    if not user.is_active or created_by_id != user.id:
        return False
    if enrolment.learner_id == user.id and user.has_role(Role.LEARNER):
        return True
    return can_assess(user, enrolment)


def can_map_evidence(user: Person, enrolment: EnrolmentLike, created_by_id: int) -> bool:
    """The learner maps their portfolio (working towards); the assigned assessor's is final."""
    if not user.is_active:
        return False
    if enrolment.learner_id == user.id and user.has_role(Role.LEARNER):
        return True
    return can_assess(user, enrolment)


def can_view_audit(user: Person, enrolment: EnrolmentLike) -> bool:
    """A learner's audit history: their assessor, their IQA and the centre's admins."""
    if not user.is_active:
        return False
    if enrolment.assessor_id == user.id and user.has_role(Role.ASSESSOR):
        return True
    if enrolment.iqa_id == user.id and user.has_role(Role.IQA):
        return True
    return is_admin_of(user, enrolment.centre_id)


def can_countersign(user: Person, centre_id: int, decided_by_id: int, learner_id: int,
                    assessor_status: str | None, iqa_id: int | None = None) -> bool:
    """A qualified assessor of the centre, who neither made the decision nor is the learner,
    nor the enrolment's IQA (who must stay independent of the decisions they sample)."""
    return (user.is_active and user.has_role(Role.ASSESSOR) and assessor_status == "qualified"
            and user.centre_id == centre_id
            and user.id not in (decided_by_id, learner_id, iqa_id))


def is_independent_iqa(iqa_id: int, decided_by_id: int, countersigned_by_id: int | None,
                       learner_id: int) -> bool:
    """An IQA may plan or sample a decision only if they neither made nor countersigned it,
    and are not its learner."""
    return iqa_id not in (decided_by_id, countersigned_by_id, learner_id)


def can_read_for_countersign(user: Person, status: str, centre_id: int, decided_by_id: int,
                             learner_id: int, assessor_status: str | None,
                             iqa_id: int | None = None) -> bool:
    """A countersigner reads exactly the decisions they are asked to countersign (a trainee's
    decision still waiting), with the evidence those decisions cite, and nothing else."""
    return status == "awaiting_countersignature" and can_countersign(
        user, centre_id, decided_by_id, learner_id, assessor_status, iqa_id)
