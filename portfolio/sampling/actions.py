"""IQA actions: open, acknowledged, responded (by the owner), closed (by the IQA)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.audit import record_event
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from portfolio.models import (
    IqaAction,
    Role,
    User,
)
from portfolio.sampling import states
from portfolio.sampling.strategy import is_iqa


def get_action(session: Session, action_id: int, user: User) -> IqaAction:
    """The action's owner and the IQA who set it see it."""
    action = session.get(IqaAction, action_id)
    if action is None or not user.is_active or user.id not in (action.owner_id,
                                                               action.sample.iqa_id):
        raise NotFound("No such action, or it is not one you can see.")
    return action


def _takes(user: User, action: IqaAction, step: str) -> bool:
    """Whether this step of the action is `user`'s to take (whatever its state)."""
    if states.WHO[step] == "owner":
        return user.id == action.owner_id
    return user.id == action.sample.iqa_id and is_iqa(user)


def action_steps(action: IqaAction, user: User) -> frozenset[str]:
    """The steps `user` may take on the action now: what its page offers them."""
    return frozenset(step for step in states.ACTIONS.possible(action.status)
                     if _takes(user, action, step))


def advance_action(session: Session, action: IqaAction, *, actor: User, step: str,
                   text_md: str = "") -> IqaAction:
    """Take one step in an action's life; `sampling.states` says who and from where."""
    if step not in states.ACTIONS.moves:
        raise ValidationFailed("Unknown step.")
    who = states.WHO[step]
    if not _takes(actor, action, step):
        raise PermissionDenied("Only the action's owner can do that." if who == "owner" else
                               "Only the internal quality assurer who set the action closes "
                               "it.")
    if step not in states.ACTIONS.possible(action.status):
        raise InvalidTransition(states.ACTIONS.refusal(step, action.status))
    text_md = (text_md or "").strip()
    if step == "respond" and not text_md:
        raise ValidationFailed("Say what you have done about the action.", field="response_md")
    now = utcnow()
    before = action.status
    if step == "acknowledge":
        action.acknowledged_at = now
    elif step == "respond":
        action.response_md = text_md if not action.response_md else (
            f"{action.response_md}\n\n{text_md}")
        action.responded_at = now
    else:
        action.closed_at, action.closed_by_id = now, actor.id
        action.closing_note = text_md
    states.move_action(action, step)
    session.flush()
    record_event(session, action=f"iqa.action_{step}", subject_type="iqa_action",
                 subject_id=action.id, actor=actor,
                 actor_role=Role.IQA.value if who == "iqa" else Role.ASSESSOR.value,
                 learner_id=action.sample.enrolment.learner_id,
                 detail={"from": before, "to": action.status})
    return action


def open_actions_for_owner(session: Session, user: User) -> list[IqaAction]:
    return list(session.scalars(select(IqaAction).where(
        IqaAction.owner_id == user.id, IqaAction.status != states.CLOSED)
        .order_by(IqaAction.due_on, IqaAction.id)))


def open_actions_for_enrolment(session: Session, enrolment_id: int) -> list[IqaAction]:
    return list(session.scalars(select(IqaAction).where(
        IqaAction.enrolment_id == enrolment_id, IqaAction.status != states.CLOSED)
        .order_by(IqaAction.due_on, IqaAction.id)))
