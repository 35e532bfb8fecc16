"""Which audit events tell whom: one rule per action, each naming recipients, a title and a link.

`on_event` is called by `portfolio.audit.record_event` once an event is flushed, inside the same
transaction, so a notification exists exactly when the change it reports was committed. A rule
returns `Notice`s; `on_event` then drops the actor (nobody is told about what they did
themselves), people who are not active, and anyone who may not see the thing the notice links to
(each notice carries that check, written with `portfolio.permissions`). Unknown actions, and
events copied in by a bundle import, produce nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.evidence.kinds import KINDS
from portfolio.models import (
    AuditEvent,
    CriterionDecision,
    Enrolment,
    EqaPack,
    Evidence,
    IqaAction,
    IqaSample,
    Notification,
    Role,
    Signature,
    User,
    UserRole,
    WitnessRequest,
    current_version,
)
from portfolio.permissions import can_countersign, can_manage_users, can_view_enrolment


@dataclass(frozen=True)
class Notice:
    """One person to tell, what to tell them, where to send them, and whether they may go there."""

    recipient: User
    kind: str
    title: str
    link: str
    may_see: Callable[[User], bool]
    enrolment: Enrolment | None = None


Rule = Callable[[Session, AuditEvent], list[Notice]]


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _evidence_title(evidence: Evidence) -> str:
    return current_version(evidence).title


def _viewer(enrolment: Enrolment) -> Callable[[User], bool]:
    return lambda user: can_view_enrolment(user, enrolment)


def _unit_name(enrolment: Enrolment) -> str:
    return f"unit {enrolment.unit.number}, {enrolment.unit.title}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _evidence(session: Session, event: AuditEvent) -> Evidence | None:
    number = _int(event.subject_id)
    return session.get(Evidence, number) if number is not None else None


def _signature(session: Session, event: AuditEvent) -> tuple[Signature, Enrolment] | None:
    number = _int(event.subject_id)
    signature = session.get(Signature, number) if number is not None else None
    if signature is None:
        return None
    enrolment = session.get(Enrolment, signature.enrolment_id)
    return (signature, enrolment) if enrolment is not None else None


def _decision(session: Session, value: Any) -> CriterionDecision | None:
    number = _int(value)
    return session.get(CriterionDecision, number) if number is not None else None


def _criterion_link(decision: CriterionDecision) -> str:
    return f"/enrolments/{decision.enrolment_id}/criteria/{decision.criterion_id}"


# --- the rules ----------------------------------------------------------------------------------

def evidence_submitted(session: Session, event: AuditEvent) -> list[Notice]:
    evidence = _evidence(session, event)
    if evidence is None:
        return []
    enrolment = evidence.enrolment
    return [Notice(enrolment.assessor, "evidence_submitted",
                   f"{enrolment.learner.full_name} submitted “{_evidence_title(evidence)}” "
                   "for you to review", f"/evidence/{evidence.id}", _viewer(enrolment),
                   enrolment)]


def evidence_reviewed(session: Session, event: AuditEvent) -> list[Notice]:
    evidence = _evidence(session, event)
    if evidence is None:
        return []
    enrolment = evidence.enrolment
    title = _evidence_title(evidence)
    if event.action == "evidence.accepted":
        kind, text = "evidence_accepted", f"Your evidence “{title}” was accepted"
    else:
        kind, text = ("evidence_referred",
                      f"Your evidence “{title}” was referred back: read what to change")
    return [Notice(enrolment.learner, kind, text, f"/evidence/{evidence.id}",
                   _viewer(enrolment), enrolment)]


def assessor_recorded(session: Session, event: AuditEvent) -> list[Notice]:
    """The assessor recorded and signed evidence of the learner's (an observation): the
    learner reads it; there is nothing to review."""
    found = _signature(session, event)
    if found is None:
        return []
    signature, enrolment = found
    evidence = session.get(Evidence, signature.subject_id)
    if evidence is None:
        return []
    kind = KINDS[evidence.kind].label.lower() if evidence.kind in KINDS else "record"
    return [Notice(enrolment.learner, "assessor_recorded",
                   f"{enrolment.assessor.full_name} recorded a {kind}: "
                   f"“{_evidence_title(evidence)}”", f"/evidence/{evidence.id}",
                   _viewer(enrolment), enrolment)]


def criterion_decided(session: Session, event: AuditEvent) -> list[Notice]:
    found = _signature(session, event)
    decision = _decision(session, (event.detail or {}).get("decision_id"))
    if found is None or decision is None:
        return []
    _signature_row, enrolment = found
    number = decision.criterion.number
    link = _criterion_link(decision)
    notices: list[Notice] = []
    if decision.status == "awaiting_countersignature":
        notices.append(Notice(enrolment.learner, "criterion_decided",
                              f"Criterion {number} was assessed as met; it counts once a "
                              "qualified assessor countersigns it", link, _viewer(enrolment),
                              enrolment))
        centre_id = enrolment.learner.centre_id
        candidates = session.scalars(
            select(User).join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.ASSESSOR.value, User.centre_id == centre_id,
                   User.assessor_status == "qualified", User.is_active.is_(True))
            .order_by(User.id))

        def may_countersign(user: User) -> bool:
            return can_countersign(user, centre_id, decision.decided_by_id,
                                   enrolment.learner_id, user.assessor_status, enrolment.iqa_id)

        for person in candidates:
            notices.append(Notice(
                person, "countersign_asked",
                f"Countersign criterion {number} for {enrolment.learner.full_name}, decided by "
                f"{decision.decided_by.full_name}", "/countersign", may_countersign, enrolment))
    else:
        notices.append(Notice(enrolment.learner, "criterion_decided",
                              f"Criterion {number} was signed off as met", link,
                              _viewer(enrolment), enrolment))
    return notices


def countersigned(session: Session, event: AuditEvent) -> list[Notice]:
    found = _signature(session, event)
    decision = _decision(session, (event.detail or {}).get("decision_id"))
    if found is None or decision is None:
        return []
    _signature_row, enrolment = found
    return [Notice(decision.decided_by, "decision_countersigned",
                   f"Your decision on criterion {decision.criterion.number} for "
                   f"{enrolment.learner.full_name} was countersigned",
                   _criterion_link(decision), _viewer(enrolment), enrolment)]


def decision_returned(session: Session, event: AuditEvent) -> list[Notice]:
    decision = _decision(session, (event.detail or {}).get("decision_id", event.subject_id))
    if decision is None:
        return []
    enrolment = decision.enrolment
    return [Notice(decision.decided_by, "decision_returned",
                   f"Your decision on criterion {decision.criterion.number} for "
                   f"{enrolment.learner.full_name} was returned to you with comments",
                   _criterion_link(decision), _viewer(enrolment), enrolment)]


def unit_signed_off(session: Session, event: AuditEvent) -> list[Notice]:
    found = _signature(session, event)
    if found is None:
        return []
    _signature_row, enrolment = found
    return [Notice(enrolment.learner, "unit_signed_off",
                   f"Co-sign your unit: your assessor signed off {_unit_name(enrolment)}",
                   f"/enrolments/{enrolment.id}/sign-off", _viewer(enrolment), enrolment)]


def unit_cosigned(session: Session, event: AuditEvent) -> list[Notice]:
    found = _signature(session, event)
    if found is None:
        return []
    _signature_row, enrolment = found
    return [Notice(enrolment.assessor, "unit_cosigned",
                   f"{enrolment.learner.full_name} co-signed {_unit_name(enrolment)}: "
                   "the unit is complete", f"/enrolments/{enrolment.id}/sign-off",
                   _viewer(enrolment), enrolment)]


def witness_replied(session: Session, event: AuditEvent) -> list[Notice]:
    number = _int(event.subject_id)
    request = session.get(WitnessRequest, number) if number is not None else None
    if request is None:
        return []
    enrolment = request.enrolment
    if event.action == "witness.sign":
        kind, text = "witness_signed", f"{request.witness_name} signed your witness testimony"
    else:
        kind, text = ("witness_declined",
                      f"{request.witness_name} declined to give a witness testimony")
    return [Notice(enrolment.learner, kind, text, f"/enrolments/{enrolment.id}/witnesses",
                   _viewer(enrolment), enrolment)]


def eqa_pack_shared(session: Session, event: AuditEvent) -> list[Notice]:
    number = _int(event.subject_id)
    pack = session.get(EqaPack, number) if number is not None else None
    if pack is None:
        return []

    def is_the_eqa(user: User) -> bool:
        return user.id == pack.eqa_id and user.has_role(Role.EQA)

    return [Notice(pack.eqa, "eqa_pack_shared",
                   f"Portfolios were shared with you for external quality assurance: "
                   f"“{pack.title}”, open from {_day(pack.valid_from)} to "
                   f"{_day(pack.valid_to)}", f"/eqa/packs/{pack.id}", is_the_eqa)]


def enrolled(session: Session, event: AuditEvent) -> list[Notice]:
    number = _int(event.subject_id)
    enrolment = session.get(Enrolment, number) if number is not None else None
    if enrolment is None:
        return []
    link = f"/enrolments/{enrolment.id}"
    return [
        Notice(enrolment.learner, "enrolled",
               f"You were enrolled on {_unit_name(enrolment)}", link, _viewer(enrolment),
               enrolment),
        Notice(enrolment.assessor, "enrolled",
               f"{enrolment.learner.full_name} was enrolled on {_unit_name(enrolment)} with you "
               "as their assessor", link, _viewer(enrolment), enrolment),
    ]


def iqa_actions_raised(session: Session, event: AuditEvent) -> list[Notice]:
    number = _int(event.subject_id)
    sample = session.get(IqaSample, number) if number is not None else None
    if sample is None:
        return []
    actions = session.scalars(select(IqaAction).where(IqaAction.sample_id == sample.id)
                              .order_by(IqaAction.due_on, IqaAction.id))
    enrolment = sample.enrolment
    notices = []
    for action in actions:
        owner_id = action.owner_id

        def is_owner(user: User, owner_id: int = owner_id) -> bool:
            # The sample page shows the action to the assessor whose work was sampled.
            return user.id == owner_id and user.id == sample.assessor_id

        notices.append(Notice(action.owner, "iqa_action",
                              f"An internal quality assurer set you an action about "
                              f"{enrolment.learner.full_name}'s portfolio, due "
                              f"{_day(action.due_on)}", f"/iqa/samples/{sample.id}", is_owner,
                              enrolment))
    return notices


def comment_added(session: Session, event: AuditEvent) -> list[Notice]:
    evidence = _evidence(session, event)
    if evidence is None:
        return []
    enrolment = evidence.enrolment
    author = session.get(User, event.actor_id) if event.actor_id is not None else None
    who = author.full_name if author is not None else "Someone"
    comment_id = _int((event.detail or {}).get("comment_id"))
    link = f"/evidence/{evidence.id}" + (f"#comment-{comment_id}" if comment_id else "")
    title = f"{who} commented on “{_evidence_title(evidence)}”"
    people = [enrolment.learner, enrolment.assessor, enrolment.iqa]
    return [Notice(person, "comment_added", title, link, _viewer(enrolment), enrolment)
            for person in people if person is not None]


def invitation_accepted(session: Session, event: AuditEvent) -> list[Notice]:
    """The person an admin invited has chosen their password: the admin is told."""
    number = _int(event.subject_id)
    person = session.get(User, number) if number is not None else None
    inviter_id = (event.detail or {}).get("invited_by")
    inviter = session.get(User, inviter_id) if isinstance(inviter_id, int) else None
    if person is None or inviter is None:
        return []
    return [Notice(inviter, "invite_accepted",
                   f"{person.full_name} accepted your invitation and can now sign in",
                   "/admin/people", lambda u: can_manage_users(u, person.centre_id))]


RULES: dict[str, Rule] = {
    "evidence.submit": evidence_submitted,
    "evidence.accepted": evidence_reviewed,
    "evidence.referred": evidence_reviewed,
    "signature.criterion_decision": criterion_decided,
    "signature.assessor_record": assessor_recorded,
    "signature.countersignature": countersigned,
    "signature.decision_return": decision_returned,
    "signature.unit_signoff": unit_signed_off,
    "signature.unit_cosign": unit_cosigned,
    "witness.sign": witness_replied,
    "witness.decline": witness_replied,
    "eqa.pack_create": eqa_pack_shared,
    "enrolment.create": enrolled,
    "iqa.outcome_recorded": iqa_actions_raised,
    "comment.added": comment_added,
    "user.invite_accepted": invitation_accepted,
}


def notices_for(session: Session, event: AuditEvent) -> list[Notice]:
    """The notices an event calls for, before the actor and unseeing people are dropped."""
    rule = RULES.get(event.action)
    if rule is None or "imported" in (event.detail or {}):
        return []
    return rule(session, event)


def _keep(notices: Iterable[Notice], actor_id: int | None) -> list[Notice]:
    kept: list[Notice] = []
    seen: set[int] = set()
    for notice in notices:
        person = notice.recipient
        if (person is None or person.id == actor_id or person.id in seen
                or not person.is_active or not notice.may_see(person)):
            continue
        seen.add(person.id)
        kept.append(notice)
    return kept


def on_event(session: Session, event: AuditEvent) -> list[Notification]:
    """Add the notifications an audit event calls for (flushed with the caller's transaction)."""
    rows = [
        Notification(recipient_id=notice.recipient.id, kind=notice.kind,
                     title=notice.title[:300], link=notice.link,
                     enrolment_id=notice.enrolment.id if notice.enrolment else None,
                     learner_id=notice.enrolment.learner_id if notice.enrolment else None,
                     audit_seq=event.seq, created_at=event.at)
        for notice in _keep(notices_for(session, event), event.actor_id)
    ]
    session.add_all(rows)
    return rows
