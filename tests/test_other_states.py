"""Enrolments, IQA samples and IQA actions move only as their state tables say (issue 15), all
three on the shared `portfolio.states.Machine`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portfolio.enrolments import states as enrolment_states
from portfolio.errors import InvalidTransition, ValidationFailed
from portfolio.models import (
    ActionStatus,
    Enrolment,
    EnrolmentStatus,
    IqaAction,
    IqaSample,
    SampleStatus,
)
from portfolio.models.enrolments import ENROLMENT_STATUSES
from portfolio.models.sampling import ACTION_STATUSES, SAMPLE_STATUSES
from portfolio.sampling import states as sampling_states

ROOT = Path(__file__).resolve().parent.parent / "portfolio"

CASES = [
    # (machine, model, every status, {(move, from): to})
    (enrolment_states.MACHINE, Enrolment, ENROLMENT_STATUSES,
     {("complete", "active"): "completed", ("reopen", "completed"): "active"}),
    (sampling_states.SAMPLES, IqaSample, SAMPLE_STATUSES,
     {("complete", "in_progress"): "completed"}),
    (sampling_states.ACTIONS, IqaAction, ACTION_STATUSES,
     {("acknowledge", "open"): "acknowledged", ("respond", "acknowledged"): "responded",
      ("respond", "responded"): "responded", ("close", "responded"): "closed"}),
]


def test_the_database_knows_exactly_the_enum_states():
    assert set(ENROLMENT_STATUSES) == {s.value for s in EnrolmentStatus}
    assert set(SAMPLE_STATUSES) == {s.value for s in SampleStatus}
    assert set(ACTION_STATUSES) == {s.value for s in ActionStatus}


@pytest.mark.parametrize(("machine", "model", "statuses", "expected"), CASES,
                         ids=["enrolment", "sample", "action"])
def test_every_move_from_every_state(machine, model, statuses, expected):
    for name in machine.moves:
        for status in statuses:
            thing = model(status=status)
            to = expected.get((name, status))
            assert (name in machine.possible(status)) == (to is not None), (name, status)
            if to is None:
                with pytest.raises(InvalidTransition) as refused:
                    machine.move(thing, name)
                assert status.replace("_", " ") in refused.value.message
                assert thing.status == status
            else:
                assert machine.move(thing, name) == to and thing.status == to


def test_the_admin_may_set_any_enrolment_state_but_no_other():
    enrolment = Enrolment(status="completed")
    for status in ENROLMENT_STATUSES:
        assert enrolment_states.set_by_admin(
            enrolment, enrolment_states.parse_status(status)) == status
    with pytest.raises(ValidationFailed):
        enrolment_states.parse_status("paused")
    assert enrolment_states.reopen_if_completed(Enrolment(status="withdrawn")) is False


def test_nothing_else_sets_these_statuses():
    names = {"enrolment", "sample", "action", "e", "s", "a"}
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if (isinstance(t, ast.Attribute) and t.attr == "status"
                            and isinstance(t.value, ast.Name) and t.value.id in names):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
