"""An evidence item's states move only as `portfolio.evidence.states` says (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portfolio.errors import InvalidTransition
from portfolio.evidence import states
from portfolio.models import Evidence, EvidenceStatus
from portfolio.models.evidence import EVIDENCE_STATUSES

ROOT = Path(__file__).resolve().parent.parent / "portfolio"

# What the app did before the table existed, written out by hand: the table must say the same.
EXPECTED = {
    ("submit", "draft"): "submitted", ("submit", "referred"): "submitted",
    ("withdraw", "draft"): "withdrawn", ("withdraw", "referred"): "withdrawn",
    ("accept", "submitted"): "accepted",
    ("refer", "submitted"): "referred", ("refer", "accepted"): "referred",
    ("record", "draft"): "accepted", ("record", "referred"): "accepted",
}


def test_the_database_knows_exactly_the_enum_states():
    assert set(EVIDENCE_STATUSES) == {s.value for s in EvidenceStatus}
    assert EvidenceStatus.ACCEPTED == "accepted"  # stored and compared as plain text


@pytest.mark.parametrize("name", sorted(states.MOVES))
@pytest.mark.parametrize("status", EVIDENCE_STATUSES)
def test_every_move_from_every_state(name, status):
    evidence = Evidence(status=status)
    expected = EXPECTED.get((name, status))
    assert (name in states.possible(evidence)) == (expected is not None)
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            states.move(evidence, name)
        assert status in refused.value.message
        assert evidence.status == status  # nothing changed
    else:
        assert states.move(evidence, name) == expected
        assert evidence.status == expected


def test_nothing_else_sets_an_evidence_status():
    """Only the table's `move` assigns `<evidence>.status`; any other assignment would be a
    move the table does not know about."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if (isinstance(target, ast.Attribute) and target.attr == "status"
                            and isinstance(target.value, ast.Name)
                            and target.value.id in ("evidence", "item", "e")):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
