"""The states of IQA samples and actions, and the only moves between them.

A sample is in progress until the IQA signs its outcome. An action is open until its owner
acknowledges it, then responded to (the owner may add to the response), then closed by the IQA
who set it. Who may make each action move is `WHO`'s answer; `portfolio.sampling.actions`
checks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portfolio.models.sampling import ActionStatus, SampleStatus
from portfolio.states import Machine, Move

if TYPE_CHECKING:
    from portfolio.models import IqaAction, IqaSample

IN_PROGRESS, COMPLETED = SampleStatus.IN_PROGRESS, SampleStatus.COMPLETED
OPEN, ACKNOWLEDGED, RESPONDED, CLOSED = (
    ActionStatus.OPEN, ActionStatus.ACKNOWLEDGED, ActionStatus.RESPONDED, ActionStatus.CLOSED)
# Actions still waiting for someone.
NOT_CLOSED: frozenset[ActionStatus] = frozenset({OPEN, ACKNOWLEDGED, RESPONDED})

SAMPLES: Machine[SampleStatus] = Machine([
    Move("complete", frozenset({IN_PROGRESS}), COMPLETED,
         "This sample is {status}: its outcome was recorded already."),
])

ACTIONS: Machine[ActionStatus] = Machine([
    Move("acknowledge", frozenset({OPEN}), ACKNOWLEDGED,
         "Only an open action can be acknowledged. This one is {status}."),
    Move("respond", frozenset({ACKNOWLEDGED, RESPONDED}), RESPONDED,
         "Acknowledge the action before responding, and respond before it is closed. This one "
         "is {status}."),
    Move("close", frozenset({RESPONDED}), CLOSED,
         "An action can be closed only once its owner has responded. This one is {status}."),
])
# Who takes each step: the action's owner (an assessor), or the IQA who set it.
WHO = {"acknowledge": "owner", "respond": "owner", "close": "iqa"}


def complete_sample(sample: IqaSample) -> SampleStatus:
    return SAMPLES.move(sample, "complete")


def move_action(action: IqaAction, step: str) -> ActionStatus:
    return ACTIONS.move(action, step)
