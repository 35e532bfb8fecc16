"""A criterion decision's states move only as `portfolio.assessment.states` says (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portfolio.assessment import states
from portfolio.errors import InvalidTransition
from portfolio.models import CriterionDecision, DecisionStatus
from portfolio.models.assessment import DECISION_STATUSES

ROOT = Path(__file__).resolve().parent.parent / "portfolio"

# What the app did before the table existed, written out by hand.
EXPECTED = {
    ("countersign", "awaiting_countersignature"): "met",
    ("return", "awaiting_countersignature"): "returned",
    ("invalidate", "met"): "invalidated",
    ("invalidate", "awaiting_countersignature"): "invalidated",
    ("reopen", "met"): "reopened",
    ("reopen", "awaiting_countersignature"): "reopened",
}


def test_the_database_knows_exactly_the_enum_states():
    assert set(DECISION_STATUSES) == {s.value for s in DecisionStatus}
    assert states.first_status(trainee=True) == "awaiting_countersignature"
    assert states.first_status(trainee=False) == "met"


@pytest.mark.parametrize("name", sorted(states.MOVES))
@pytest.mark.parametrize("status", DECISION_STATUSES)
def test_every_move_from_every_state(name, status):
    decision = CriterionDecision(status=status)
    expected = EXPECTED.get((name, status))
    if expected is None:
        with pytest.raises(InvalidTransition):
            states.move(decision, name)
        assert decision.status == status
    else:
        assert states.move(decision, name) == expected
    # The conditional UPDATE of a racing move starts from the same states.
    clause, values = states.claim_clause(name)
    assert values == {"status": states.MOVES[name].target}
    assert sorted(clause.right.value) == sorted(s for (n, s) in EXPECTED if n == name)


def test_nothing_else_sets_a_decision_status():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AugAssign) else [])
            for target in targets:
                if (isinstance(target, ast.Attribute) and target.attr == "status"
                        and isinstance(target.value, ast.Name)
                        and target.value.id in ("decision", "d", "live")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            # A conditional UPDATE of decisions that writes a status by hand.
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "values"
                    and any(k.arg == "status" and isinstance(k.value, ast.Constant)
                            and k.value.value in DECISION_STATUSES for k in node.keywords)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} (UPDATE)")
    assert not offenders, offenders
