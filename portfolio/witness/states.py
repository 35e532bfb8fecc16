"""A witness request's states and the only moves between them, as one table.

A request is pending until its link is used (signed or declined) or the person who asked
withdraws it (cancelled) or sends a corrected one (replaced). Every other state is final: the
link only says what happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portfolio.models.witness import WitnessStatus
from portfolio.states import Machine, Move

if TYPE_CHECKING:
    from portfolio.models import WitnessRequest

PENDING, SIGNED, DECLINED, CANCELLED, REPLACED = (
    WitnessStatus.PENDING, WitnessStatus.SIGNED, WitnessStatus.DECLINED,
    WitnessStatus.CANCELLED, WitnessStatus.REPLACED)
# Requests whose link still works (if not expired), and which the requester may still change.
OPEN: frozenset[WitnessStatus] = frozenset({PENDING})
# Requests that were withdrawn by whoever asked (their link "no longer works").
WITHDRAWN: frozenset[WitnessStatus] = frozenset({CANCELLED, REPLACED})

MACHINE: Machine[WitnessStatus] = Machine([
    Move(name, OPEN, target, "This request is {status}: it can no longer be changed.")
    for name, target in (("sign", SIGNED), ("decline", DECLINED), ("cancel", CANCELLED),
                         ("replace", REPLACED))
])
MOVES = MACHINE.moves


def move(request: WitnessRequest, name: str) -> WitnessStatus:
    """Make a move, or refuse it with InvalidTransition (nothing is changed)."""
    return MACHINE.move(request, name)
