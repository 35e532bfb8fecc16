"""A thing's states and the only moves between them, as one table: the shared machinery.

Each domain with states declares its moves once (`evidence/states.py`, `assessment/states.py`,
`witness/states.py`, `sampling/action_states.py`, ...). A `Machine` then answers which moves a
state allows, makes a move on a loaded object (refusing, with the domain's words, any move the
table does not have), and builds the WHERE clause of a conditional UPDATE for moves that two
people may race to make, so that only one of them wins.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from portfolio.errors import InvalidTransition

S = TypeVar("S", bound=enum.StrEnum)


class HasStatus(Protocol):
    status: Any


@dataclass(frozen=True)
class Move(Generic[S]):
    """A named move: from any of `sources` to `target`. `refusal`, when given, is what a
    refused move says ({status} is filled in with the state it was refused from)."""

    name: str
    sources: frozenset[S]
    target: S
    refusal: str = ""


class Machine(Generic[S]):
    """The moves of one kind of thing, by name."""

    def __init__(self, moves: Iterable[Move[S]],
                 refuse: Callable[[Move[S], str], str] | None = None) -> None:
        self.moves: dict[str, Move[S]] = {m.name: m for m in moves}
        self._refuse = refuse

    def __getitem__(self, name: str) -> Move[S]:
        return self.moves[name]

    def possible(self, status: str) -> frozenset[str]:
        """The moves a thing in this state may make."""
        return frozenset(name for name, m in self.moves.items() if status in m.sources)

    def refusal(self, name: str, status: str) -> str:
        step = self.moves[name]
        if step.refusal:
            return step.refusal.format(status=str(status).replace("_", " "))
        if self._refuse is not None:
            return self._refuse(step, str(status))
        return f"This is {str(status).replace('_', ' ')}: it cannot be {name}ed now."

    def move(self, thing: HasStatus, name: str) -> S:
        """Make a move on a loaded object, or raise InvalidTransition (nothing changed)."""
        step = self.moves[name]
        if thing.status not in step.sources:
            raise InvalidTransition(self.refusal(name, thing.status))
        thing.status = step.target
        return step.target

    def claim_clause(self, column: Any, name: str) -> tuple[Any, dict[str, S]]:
        """The WHERE clause and new values of a conditional UPDATE making this move: it changes
        the row only if it is still in one of the move's starting states."""
        step = self.moves[name]
        return column.in_(sorted(step.sources)), {"status": step.target}
