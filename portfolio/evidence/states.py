"""An evidence item's states and the only moves between them, as one table.

Every change of `Evidence.status` goes through `move`, which refuses a move the table does not
have; `possible` tells a view which moves the item's state allows (whether this person may make
them is `portfolio.permissions`' answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portfolio.models.evidence import EvidenceStatus
from portfolio.states import Machine, Move

if TYPE_CHECKING:
    from portfolio.models import Evidence

DRAFT, SUBMITTED, REFERRED, ACCEPTED, WITHDRAWN = (
    EvidenceStatus.DRAFT, EvidenceStatus.SUBMITTED, EvidenceStatus.REFERRED,
    EvidenceStatus.ACCEPTED, EvidenceStatus.WITHDRAWN)

# The learner (or whoever added it) may change an item, map it and withdraw it in these states.
EDITABLE: frozenset[EvidenceStatus] = frozenset({DRAFT, REFERRED})


MACHINE: Machine[EvidenceStatus] = Machine([
    Move("submit", EDITABLE, SUBMITTED,
         "This evidence is {status}: only a draft or a referred item can be submitted."),
    Move("withdraw", EDITABLE, WITHDRAWN,
         "This evidence is {status}: only a draft or a referred item can be withdrawn."),
    Move("accept", frozenset({SUBMITTED}), ACCEPTED,
         "This evidence is {status}: it cannot be accepted now."),
    Move("refer", frozenset({SUBMITTED, ACCEPTED}), REFERRED,
         "This evidence is {status}: it cannot be referred now."),
    # The assessor's own record (an observation, a professional discussion) is accepted as it
    # is signed, from the draft they started or after they revised it.
    Move("record", EDITABLE, ACCEPTED,
         "This record is {status}: it was signed already."),
])
MOVES = MACHINE.moves


def possible(evidence: Evidence) -> frozenset[str]:
    """The moves the item's current state allows."""
    return MACHINE.possible(evidence.status)


def move(evidence: Evidence, name: str) -> EvidenceStatus:
    """Make a move, or refuse it with InvalidTransition (nothing is changed)."""
    return MACHINE.move(evidence, name)
