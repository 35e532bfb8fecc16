"""An enrolment's states and the moves between them, as one table.

The learner's co-signature of the unit sign-off completes an enrolment; an internal quality
assurer who disagrees with a decision or the sign-off makes it active again. The centre's admin
may also set any state by hand (a withdrawal, or putting right a mistake): `set_by_admin`, which
the enrolment's audit event records with the state before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portfolio.errors import ValidationFailed
from portfolio.models.enrolments import EnrolmentStatus
from portfolio.states import Machine, Move

if TYPE_CHECKING:
    from portfolio.models import Enrolment

ACTIVE, COMPLETED, WITHDRAWN = (
    EnrolmentStatus.ACTIVE, EnrolmentStatus.COMPLETED, EnrolmentStatus.WITHDRAWN)

MACHINE: Machine[EnrolmentStatus] = Machine([
    Move("complete", frozenset({ACTIVE}), COMPLETED,
         "This enrolment is {status}: only an active one can be completed."),
    Move("reopen", frozenset({COMPLETED}), ACTIVE,
         "This enrolment is {status}: only a completed one can be reopened."),
])
MOVES = MACHINE.moves


def move(enrolment: Enrolment, name: str) -> EnrolmentStatus:
    """Make a move, or refuse it with InvalidTransition (nothing is changed)."""
    return MACHINE.move(enrolment, name)


def reopen_if_completed(enrolment: Enrolment) -> bool:
    """Make a completed enrolment active again; False (and nothing changed) otherwise."""
    if "reopen" not in MACHINE.possible(enrolment.status):
        return False
    move(enrolment, "reopen")
    return True


def parse_status(status: str) -> EnrolmentStatus:
    """The state named by a form or an API call.

    :raises ValidationFailed: not a state an enrolment has.
    """
    try:
        return EnrolmentStatus(status)
    except ValueError:
        raise ValidationFailed("Status is active, completed or withdrawn.",
                               field="status") from None


def set_by_admin(enrolment: Enrolment, status: EnrolmentStatus) -> EnrolmentStatus:
    """The admin's own choice of state, which may be any of them."""
    enrolment.status = status
    return status
