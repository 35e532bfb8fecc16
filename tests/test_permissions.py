"""Permissions as a role x action x ownership table; the SQL filters agree with them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from portfolio import permissions as p
from portfolio.enrolments.queries import list_visible_enrolments
from portfolio.models import Enrolment, Role, User
from tests.factories import make_centre, make_enrolment, make_user, make_world


@dataclass
class FakeUser:
    id: int
    roles: set[Role]
    centre_id: int = 1
    is_active: bool = True

    def has_role(self, role: Role) -> bool:
        return role in self.roles


@dataclass
class FakeEnrolment:
    learner_id: int = 10
    assessor_id: int = 20
    iqa_id: int | None = 30
    centre_id: int = field(default=1)


E = FakeEnrolment()
L, A, Q, X = Role.LEARNER, Role.ASSESSOR, Role.IQA, Role.EQA

# (description, user, can_view, can_assess, can_sample)
TABLE = [
    ("the learner", FakeUser(10, {L}), True, False, False),
    ("another learner", FakeUser(11, {L}), False, False, False),
    ("the assigned assessor", FakeUser(20, {A}), True, True, False),
    ("another assessor", FakeUser(21, {A}), False, False, False),
    ("the assigned IQA", FakeUser(30, {Q}), True, False, True),
    ("another IQA", FakeUser(31, {Q}), False, False, False),
    ("an EQA", FakeUser(40, {X}), False, False, False),
    ("an admin of the centre", FakeUser(50, {Role.ADMIN}), True, False, False),
    ("an admin of another centre", FakeUser(51, {Role.ADMIN}, centre_id=2), False, False,
     False),
    ("the assessor, deactivated", FakeUser(20, {A}, is_active=False), False, False, False),
    ("the IQA id, but without the IQA role", FakeUser(30, {L}), False, False, False),
    ("the assessor id holding IQA too", FakeUser(20, {A, Q}), True, True, False),
]


@pytest.mark.parametrize(("who", "user", "view", "assess", "sample"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_enrolment_permission_table(who, user, view, assess, sample):
    assert p.can_view_enrolment(user, E) is view
    assert p.can_assess(user, E) is assess
    assert p.can_sample(user, E) is sample


def test_iqa_never_samples_a_decision_they_assessed():
    both = FakeUser(20, {A, Q})
    own = FakeEnrolment(assessor_id=20, iqa_id=20)
    assert p.can_assess(both, own)
    assert not p.can_sample(both, own)


def test_units_are_readable_by_any_active_person():
    assert p.can_view_unit(FakeUser(1, {X}))
    assert not p.can_view_unit(FakeUser(1, {X}, is_active=False))


def test_admins_manage_only_their_centre():
    admin = FakeUser(1, {Role.ADMIN}, centre_id=7)
    assert p.can_manage_users(admin, 7)
    assert not p.can_manage_users(admin, 8)
    assert not p.can_manage_users(FakeUser(1, {A}, centre_id=7), 7)


def test_sql_visibility_agrees_with_the_permission_function(session):
    world = make_world(session)
    # Add people holding several roles, to exercise the OR of role clauses.
    centre = make_centre(session, "Main Centre")
    multi = make_user(session, centre, "assessor", "iqa", "learner")
    make_enrolment(session, multi, world.assessor, world.iqa, employer="Self")
    session.commit()
    enrolments = list(session.scalars(select(Enrolment)))
    for user in session.scalars(select(User)):
        visible = {e.id for e in list_visible_enrolments(session, user)}
        allowed = {e.id for e in enrolments if p.can_view_enrolment(user, e)}
        assert visible == allowed, user.email
