"""An evidence item's states and the only moves between them, as one table.

Every change of `Evidence.status` goes through `move`, which refuses a move the table does not
have; `possible` tells a view which moves the item's state allows (whether this person may make
them is `portfolio.permissions`' answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from portfolio.errors import InvalidTransition
from portfolio.models.evidence import EvidenceStatus

if TYPE_CHECKING:
    from portfolio.models import Evidence

DRAFT, SUBMITTED, REFERRED, ACCEPTED, WITHDRAWN = (
    EvidenceStatus.DRAFT, EvidenceStatus.SUBMITTED, EvidenceStatus.REFERRED,
    EvidenceStatus.ACCEPTED, EvidenceStatus.WITHDRAWN)

# The learner (or whoever added it) may change an item, map it and withdraw it in these states.
EDITABLE: frozenset[EvidenceStatus] = frozenset({DRAFT, REFERRED})


@dataclass(frozen=True)
class Move:
    """A named move: from any of `sources` to `target`."""

    name: str
    sources: frozenset[EvidenceStatus]
    target: EvidenceStatus
    refusal: str  # said when the item is in another state ({status} is filled in)


MOVES: dict[str, Move] = {move.name: move for move in (
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
)}


def possible(evidence: Evidence) -> frozenset[str]:
    """The moves the item's current state allows."""
    return frozenset(name for name, move in MOVES.items() if evidence.status in move.sources)


def move(evidence: Evidence, name: str) -> EvidenceStatus:
    """Make a move, or refuse it with InvalidTransition (nothing is changed)."""
    step = MOVES[name]
    if evidence.status not in step.sources:
        raise InvalidTransition(step.refusal.format(status=evidence.status))
    evidence.status = step.target
    return step.target
