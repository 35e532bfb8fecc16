"""The states of a background job, shared by PDF export jobs, people imports and EQA packs.

One StrEnum and one table of moves (issue 15): the stored strings are the enum's values, so
rows written before it still read the same. An export or EQA pack job is queued, runs, and
ends done or failed (a finished EQA pack later expires when its ZIP is removed); a people
import starts pending (a preview waiting for confirmation) and may instead be discarded or
expire before it is queued.
"""

from __future__ import annotations

import enum

from portfolio.states import Machine, Move


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DISCARDED = "discarded"
    EXPIRED = "expired"


# Still waiting or working: what a sweep for dead workers looks at, and what a page polls.
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# Nothing will change it any more (short of expiry).
FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.DISCARDED, JobStatus.EXPIRED)

MOVES: dict[str, Move[JobStatus]] = {m.name: m for m in (
    # A people import's preview confirmed: claimed by the request, which imports it at once
    # or hands it to a worker ("queue").
    Move("confirm", frozenset({JobStatus.PENDING}), JobStatus.RUNNING),
    Move("queue", frozenset({JobStatus.RUNNING}), JobStatus.QUEUED),
    Move("discard", frozenset({JobStatus.PENDING}), JobStatus.DISCARDED),
    Move("start", frozenset({JobStatus.QUEUED}), JobStatus.RUNNING),
    Move("finish", frozenset({JobStatus.RUNNING}), JobStatus.DONE),
    Move("fail", frozenset({JobStatus.QUEUED, JobStatus.RUNNING}), JobStatus.FAILED),
    Move("expire", frozenset({JobStatus.PENDING, JobStatus.DONE}), JobStatus.EXPIRED),
)}

MACHINE: Machine[JobStatus] = Machine(
    MOVES.values(),
    refuse=lambda step, status: f"This job is {status}: it cannot be {step.name}ed now.")


def is_active(status: str) -> bool:
    return status in ACTIVE


def is_finished(status: str) -> bool:
    return status in FINISHED
