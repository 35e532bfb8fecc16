"""A criterion decision's states and the only moves between them, as one table.

A decision starts "met", or "awaiting_countersignature" when a trainee makes it. Object moves go
through `move`; the two moves that race (countersign and return: two people may act on the same
decision at once) are made by one conditional UPDATE built from the same table
(`claim_clause`), so only one of them wins.
"""

from __future__ import annotations

from typing import Any

from portfolio.models.assessment import CriterionDecision, DecisionStatus
from portfolio.states import Machine, Move

AWAITING, MET, INVALIDATED, REOPENED, RETURNED = (
    DecisionStatus.AWAITING_COUNTERSIGNATURE, DecisionStatus.MET, DecisionStatus.INVALIDATED,
    DecisionStatus.REOPENED, DecisionStatus.RETURNED)

# The decisions that stand: the criterion counts as decided while one of these is live.
LIVE: frozenset[DecisionStatus] = frozenset({AWAITING, MET})


MACHINE: Machine[DecisionStatus] = Machine(
    [
        Move("countersign", frozenset({AWAITING}), MET),
        Move("return", frozenset({AWAITING}), RETURNED),
        # The evidence it relied on changed or was withdrawn.
        Move("invalidate", LIVE, INVALIDATED),
        # An internal quality assurer disagreed with it.
        Move("reopen", LIVE, REOPENED),
    ],
    refuse=lambda step, status: (f"This decision is {status.replace('_', ' ')}: it cannot be "
                                 f"{step.name}ed now."))
MOVES = MACHINE.moves


def first_status(*, trainee: bool) -> DecisionStatus:
    """A new decision's status: a trainee's waits for a qualified assessor's countersignature."""
    return AWAITING if trainee else MET


def move(decision: CriterionDecision, name: str) -> DecisionStatus:
    """Make a move on a loaded decision, or refuse it (nothing is changed)."""
    return MACHINE.move(decision, name)


def claim_clause(name: str) -> tuple[Any, dict[str, DecisionStatus]]:
    """The WHERE clause and the new status of a conditional UPDATE making this move: it changes
    the row only if it is still in one of the move's starting states."""
    return MACHINE.claim_clause(CriterionDecision.status, name)
