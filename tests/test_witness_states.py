"""A witness request's states move only as `portfolio.witness.states` says (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portfolio.errors import InvalidTransition
from portfolio.models import WitnessRequest, WitnessStatus
from portfolio.models.witness import WITNESS_STATUSES
from portfolio.witness import states

ROOT = Path(__file__).resolve().parent.parent / "portfolio"

# Every move leaves a pending request; nothing leaves any other state.
EXPECTED = {("sign", "pending"): "signed", ("decline", "pending"): "declined",
            ("cancel", "pending"): "cancelled", ("replace", "pending"): "replaced"}


def test_the_database_knows_exactly_the_enum_states():
    assert set(WITNESS_STATUSES) == {s.value for s in WitnessStatus}
    constraint = next(c for c in WitnessRequest.__table__.constraints
                      if getattr(c, "name", "") and "status_known" in str(c.name))
    assert all(f"'{s}'" in str(constraint.sqltext) for s in WITNESS_STATUSES)


@pytest.mark.parametrize("name", sorted(states.MOVES))
@pytest.mark.parametrize("status", WITNESS_STATUSES)
def test_every_move_from_every_state(name, status):
    request = WitnessRequest(status=status)
    expected = EXPECTED.get((name, status))
    assert (name in states.MACHINE.possible(status)) == (expected is not None)
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            states.move(request, name)
        assert status in refused.value.message
        assert request.status == status
    else:
        assert states.move(request, name) == expected
        assert request.status == expected


def test_nothing_else_sets_a_witness_request_status():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if (isinstance(target, ast.Attribute) and target.attr == "status"
                            and isinstance(target.value, ast.Name)
                            and target.value.id in ("request", "w", "witness_request")):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
