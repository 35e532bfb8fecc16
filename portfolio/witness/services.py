"""Witness testimony by single-use link: request, resend, cancel, replace, sign, decline, minimise.

The link's secret (256 random bits) exists only in the email; the database keeps its SHA-256.
A link works once, until it expires, and not after being cancelled, replaced or resent.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from portfolio.assessment.signing import sha256_of
from portfolio.audit import record_event
from portfolio.auth.services import normalise_email
from portfolio.auth.throttle import count_hits, counter_key
from portfolio.criteria.unitfile import METHODS
from portfolio.db import utcnow
from portfolio.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from portfolio.evidence.services import (
    RELATIVE_WORDS,
    EvidenceInput,
    MappingInput,
    add_evidence,
    current_version,
    set_mappings,
    submit_evidence,
)
from portfolio.models import (
    Criterion,
    CriterionMethod,
    Enrolment,
    Evidence,
    LearningOutcome,
    Role,
    User,
    WitnessRequest,
)
from portfolio.permissions import can_add_evidence, can_view_enrolment
from portfolio.witness import states

ADDED_BY = ("learner", "assessor")
SAME_EMAIL_WARNING_AT = 3


class LinkUnusable(DomainError):
    """A witness link that cannot be used: unknown, used, expired or withdrawn."""
    status = 410
    title = "This link cannot be used"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class RequestInput:
    witness_name: str
    witness_email: str
    witness_role: str
    organisation: str
    relationship: str
    activity: str
    activity_on: date | None
    activity_place: str
    criterion_ids: list[int]
    is_expert: bool = False
    expert_competence: str = ""
    draft_md: str = ""


def token_hash(raw: str) -> str:
    """Return the stored form of a link secret."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _clean(value: str, field: str, label: str, limit: int = 200, required: bool = True) -> str:
    text = " ".join((value or "").split())
    if required and not text:
        raise ValidationFailed(f"Enter the {label}.", field=field)
    if len(text) > limit:
        raise ValidationFailed(f"The {label} is too long.", field=field)
    return text


WITNESS = "witness_testimony"
EXPERT_WITNESS = "expert_witness_testimony"


@dataclass(frozen=True)
class NotForWitness:
    """Why a criterion cannot be evidenced by this kind of witness, from the unit's methods."""
    number: str
    knowledge: bool
    accepts: str  # the methods the unit names for it, in words
    expert_only: bool = False  # an expert witness could; an ordinary one cannot

    @property
    def reason(self) -> str:
        if self.expert_only:
            return "Only an expert witness can evidence this criterion."
        kind = "Knowledge: " if self.knowledge else ""
        return f"{kind}the unit asks for {self.accepts}, not a witness."


def _in_words(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def not_for_witness(session: Session, criterion_ids: list[int], *,
                    expert: bool = False) -> dict[int, NotForWitness]:
    """The criteria (of those given) whose accepted methods leave out a witness testimony.

    Read from the unit's own method list per criterion (CriterionMethod): a criterion with no
    methods recorded accepts any. An expert witness may evidence what only an expert may.
    """
    methods: dict[int, list[tuple[str, bool]]] = {}
    for criterion_id, method, preferred in session.execute(
        select(CriterionMethod.criterion_id, CriterionMethod.method, CriterionMethod.preferred)
        .where(CriterionMethod.criterion_id.in_(criterion_ids or [-1]))
        .order_by(CriterionMethod.criterion_id)
    ):
        methods.setdefault(criterion_id, []).append((method, preferred))
    found: dict[int, NotForWitness] = {}
    if not methods:
        return found
    rows = session.execute(
        select(Criterion.id, Criterion.number, LearningOutcome.kind)
        .join(LearningOutcome, LearningOutcome.id == Criterion.learning_outcome_id)
        .where(Criterion.id.in_(list(methods))).order_by(Criterion.position))
    for criterion_id, number, kind in rows:
        accepted = {m for m, _ in methods[criterion_id]}
        if WITNESS in accepted or (expert and EXPERT_WITNESS in accepted):
            continue
        named = [m for m, p in methods[criterion_id] if p] or sorted(accepted)
        order = list(METHODS)
        named.sort(key=lambda m: order.index(m) if m in order else len(order))
        found[criterion_id] = NotForWitness(
            number=number, knowledge=kind == "knowledge",
            accepts=_in_words([METHODS.get(m, m).lower().replace("rpl", "RPL")
                               for m in named]),
            expert_only=EXPERT_WITNESS in accepted)
    return found


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _refuse_unsuitable(session: Session, criteria: list[Criterion], expert: bool) -> None:
    unsuitable = not_for_witness(session, [c.id for c in criteria], expert=expert)
    if not unsuitable:
        return
    ordered = [unsuitable[c.id] for c in criteria if c.id in unsuitable]
    groups: dict[str, list[str]] = {}
    for u in ordered:
        why = "only an expert witness can" if u.expert_only else f"the unit asks for {u.accepts}"
        groups.setdefault(why, []).append(u.number)
    reasons = "; ".join(f"for {_and(numbers)} {why}" for why, numbers in groups.items())
    raise ValidationFailed(
        f"A witness cannot evidence {_and([u.number for u in ordered])}: {reasons}. "
        f"Untick {'it' if len(ordered) == 1 else 'them'} and cover "
        f"{'it' if len(ordered) == 1 else 'them'} another way.", field="criterion_ids")


def _check(session: Session, enrolment: Enrolment, data: RequestInput, today: date) -> dict:
    try:
        email = normalise_email(data.witness_email)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field="witness_email") from exc
    _check_independent(session, enrolment, email)
    relationship = _clean(data.relationship, "relationship", "relationship to the learner")
    if RELATIVE_WORDS.search(relationship):
        raise ValidationFailed("A relative cannot act as a witness. Ask a manager or colleague "
                               "who saw the activity.", field="relationship")
    if data.activity_on is None or data.activity_on > today:
        raise ValidationFailed("Enter when the activity happened (not a future date).",
                               field="activity_on")
    criteria = list(session.scalars(select(Criterion).where(
        Criterion.id.in_(data.criterion_ids or [-1]), Criterion.unit_id == enrolment.unit_id,
        Criterion.is_retired.is_(False))))
    if not criteria or len(criteria) != len(set(data.criterion_ids)):
        raise ValidationFailed("Choose the criteria the witness saw evidence of.",
                               field="criterion_ids")
    criteria.sort(key=lambda c: c.position)
    _refuse_unsuitable(session, criteria, bool(data.is_expert))
    if data.is_expert and not (data.expert_competence or "").strip():
        raise ValidationFailed("Say what makes the witness an expert witness.",
                               field="expert_competence")
    return {
        "witness_name": _clean(data.witness_name, "witness_name", "witness's name"),
        "witness_email": email,
        "witness_role": _clean(data.witness_role, "witness_role", "witness's job role"),
        "organisation": _clean(data.organisation, "organisation", "organisation"),
        "relationship": relationship,
        "is_expert": bool(data.is_expert),
        "expert_competence": (data.expert_competence or "").strip()[:2000],
        "activity": _clean(data.activity, "activity", "activity", limit=2000),
        "activity_on": data.activity_on,
        "activity_place": _clean(data.activity_place, "activity_place", "place"),
        "criterion_ids": sorted(c.id for c in criteria),
        "draft_md": (data.draft_md or "").strip()[:20_000],
    }


_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_of(email: str) -> str:
    """The mailbox an address delivers to: trimmed, lower-cased, without a "+tag" (most mail
    services deliver name+anything@ to name@), and without dots for Gmail, which ignores them.
    """
    cleaned = (email or "").strip().lower()
    local, at, domain = cleaned.rpartition("@")
    if not at:
        return cleaned
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), _DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def _is_learners(enrolment: Enrolment, email: str) -> bool:
    return mailbox_of(email) == mailbox_of(enrolment.learner.email)


def _centre_account(session: Session, enrolment: Enrolment, email: str) -> User | None:
    """Return the account at the learner's centre (the learner too) whose mailbox this is."""
    learner = enrolment.learner
    wanted = mailbox_of(email)
    domain = wanted.rpartition("@")[2]
    domains = [d for d, same in _DOTLESS_DOMAINS.items() if same == domain] or [domain]
    for user in session.scalars(select(User).where(
            User.centre_id == learner.centre_id,
            or_(*(func.lower(func.trim(User.email)).like(f"%@{d}") for d in domains)))
            .order_by(User.id)):
        if mailbox_of(user.email) == wanted:
            return user
    return None


def _check_independent(session: Session, enrolment: Enrolment, email: str) -> None:
    """Refuse a witness address that is the learner's own or any account's at their centre.

    A testimony must come from someone independent who saw the work: the learner cannot sign
    it from their own outbox, and a colleague holding an account here (assessor, IQA, admin or
    another learner) is not an outside witness.
    """
    learner = enrolment.learner
    if _is_learners(enrolment, email):
        raise ValidationFailed(
            "This is the learner's own email address. A learner cannot be their own witness: "
            "enter the work email of the person who saw the activity.", field="witness_email")
    if _centre_account(session, enrolment, email) is not None:
        raise ValidationFailed(
            f"This address belongs to an account at {learner.centre.name} (a member of staff "
            "or a learner). A witness must be someone outside the centre who saw the "
            "activity at work: enter their own work email.", field="witness_email")


def _may_request(actor: User, enrolment: Enrolment) -> None:
    if not can_add_evidence(actor, enrolment, ADDED_BY):
        raise PermissionDenied("Only the learner or their assessor can ask for a testimony.")
    if enrolment.status != "active":
        raise InvalidTransition("This enrolment is closed.")


def request_testimony(session: Session, enrolment: Enrolment, *, actor: User,
                      data: RequestInput, today: date, link_days: int
                      ) -> tuple[WitnessRequest, str]:
    """Create a request; return it with the link secret (to be emailed, never stored)."""
    _may_request(actor, enrolment)
    fields = _check(session, enrolment, data, today)
    raw = secrets.token_urlsafe(32)
    request = WitnessRequest(enrolment_id=enrolment.id, requested_by_id=actor.id,
                             token_hash=token_hash(raw),
                             expires_at=utcnow() + timedelta(days=link_days), **fields)
    session.add(request)
    session.flush()
    record_event(session, action="witness.request", subject_type="witness_request",
                 subject_id=request.id, actor=actor,
                 actor_role="learner" if actor.id == enrolment.learner_id else "assessor",
                 learner_id=enrolment.learner_id,
                 detail={"criteria": fields["criterion_ids"], "expires_at":
                         request.expires_at.isoformat()})
    return request, raw


def get_request(session: Session, request_id: int, user: User) -> WitnessRequest:
    """A witness request of an enrolment the user may see; NotFound otherwise."""
    request = session.get(WitnessRequest, request_id)
    if request is None or not can_view_enrolment(user, request.enrolment):
        raise NotFound("No such request.")
    return request


def _manage(actor: User, request: WitnessRequest) -> None:
    _may_request(actor, request.enrolment)
    if request.status not in states.OPEN:
        raise InvalidTransition(states.MACHINE.refusal("cancel", request.status))


def resend(session: Session, request: WitnessRequest, *, actor: User, link_days: int) -> str:
    """Issue a fresh link (the old one stops working) and a new expiry date."""
    _manage(actor, request)
    _check_independent(session, request.enrolment, request.witness_email)
    raw = secrets.token_urlsafe(32)
    request.token_hash = token_hash(raw)
    request.expires_at = utcnow() + timedelta(days=link_days)
    request.sent_count += 1
    record_event(session, action="witness.resend", subject_type="witness_request",
                 subject_id=request.id, actor=actor, learner_id=request.enrolment.learner_id)
    return raw


def cancel(session: Session, request: WitnessRequest, *, actor: User) -> None:
    """Withdraw a pending request; its link stops working."""
    _manage(actor, request)
    states.move(request, "cancel")
    record_event(session, action="witness.cancel", subject_type="witness_request",
                 subject_id=request.id, actor=actor, learner_id=request.enrolment.learner_id)


def replace(session: Session, request: WitnessRequest, *, actor: User, data: RequestInput,
            today: date, link_days: int) -> tuple[WitnessRequest, str]:
    """Cancel a pending request in favour of a corrected one."""
    _manage(actor, request)
    new, raw = request_testimony(session, request.enrolment, actor=actor, data=data,
                                 today=today, link_days=link_days)
    states.move(request, "replace")
    request.replaced_by_id = new.id
    return new, raw


def rate_limited(session: Session, key: str, *, limit: int, window_minutes: int) -> bool:
    """Count a hit for the key (atomically, in Redis when it is configured); True when it is
    over the limit in the window."""
    [(count, _started)] = count_hits(session, [counter_key("witness", key)],
                                     timedelta(minutes=window_minutes))
    return count > limit


def open_link(session: Session, raw: str) -> WitnessRequest:
    """Return the pending request a link belongs to.

    :raises LinkUnusable: unknown (or forged), used, declined, cancelled, replaced or expired.
    """
    request = session.scalar(select(WitnessRequest).where(
        WitnessRequest.token_hash == token_hash(raw or "")))
    if request is None:
        raise LinkUnusable("This link is not valid. Check that the whole link was copied from "
                           "the email; if it still fails, ask the person who sent it for a new "
                           "one.", "unknown")
    if request.status == states.SIGNED:
        raise LinkUnusable("This testimony has already been signed. Thank you: there is "
                           "nothing more to do.", "used")
    if request.status == states.DECLINED:
        raise LinkUnusable("You declined this request, so the link no longer works.",
                           "declined")
    if request.status in states.WITHDRAWN:
        raise LinkUnusable("This request was withdrawn by the person who sent it, so the link "
                           "no longer works.", request.status)
    if request.expires_at <= utcnow():
        raise LinkUnusable("This link has expired. Ask the person who sent it to send a new "
                           "one.", "expired")
    return request


def criteria_of(session: Session, request: WitnessRequest) -> list[Criterion]:
    """Return the criteria a request concerns, in unit order."""
    return list(session.scalars(select(Criterion).where(
        Criterion.id.in_(request.criterion_ids)).order_by(Criterion.position)))


@dataclass
class TestimonyInput:
    testimony_md: str
    relationship: str
    related: bool
    no_customer_data: bool
    typed_name: str


def sign_testimony(session: Session, raw: str, data: TestimonyInput) -> WitnessRequest:
    """Record the witness's own words, signed by typing their name; it joins the evidence.

    :raises LinkUnusable: the link cannot be used.
    :raises ValidationFailed: text, relationship, confirmation or name missing or wrong.
    """
    request = open_link(session, raw)
    text = (data.testimony_md or "").strip()
    if len(text) < 20:
        raise ValidationFailed("Describe what you saw in your own words (a few sentences).",
                               field="testimony_md")
    if len(text) > 20_000:
        raise ValidationFailed("The testimony is too long.", field="testimony_md")
    relationship = _clean(data.relationship, "relationship", "your relationship to the learner")
    if data.related or RELATIVE_WORDS.search(relationship):
        raise ValidationFailed(
            "A relative of the learner cannot give witness testimony. If you are related, "
            "please decline the request instead.", field="related")
    if not data.no_customer_data:
        raise ValidationFailed("Confirm that the testimony names no customers.",
                               field="no_customer_data")
    typed = " ".join((data.typed_name or "").split())
    if typed.casefold() != " ".join(request.witness_name.split()).casefold():
        raise ValidationFailed(f"Sign by typing your full name as it appears above "
                               f"({request.witness_name}).", field="typed_name")
    now = utcnow()
    enrolment = request.enrolment
    criteria = criteria_of(session, request)
    content: dict[str, Any] = {
        "witness_request_id": request.id, "enrolment_id": enrolment.id,
        "learner": enrolment.learner.full_name, "activity": request.activity,
        "activity_on": request.activity_on.isoformat(), "activity_place": request.activity_place,
        "criteria": [{"number": c.number, "version": c.version, "text": c.text}
                     for c in criteria],
        "testimony_md": text, "relationship": relationship, "related": False,
        "witness_name": request.witness_name, "witness_role": request.witness_role,
        "organisation": request.organisation, "signed_name": typed,
        "signed_at": now.isoformat(timespec="microseconds"),
    }
    request.testimony_md = text
    request.declared_relationship = relationship
    request.declared_related = False
    request.signed_name = typed
    request.signed_at = now
    request.used_at = now
    request.content = content
    request.content_hash = sha256_of(content)
    states.move(request, "sign")  # the link now only says so: it is single-use
    evidence = _to_evidence(session, request, criteria, text, relationship)
    request.evidence_id = evidence.id
    session.flush()
    record_event(session, action="witness.sign", subject_type="witness_request",
                 subject_id=request.id, learner_id=enrolment.learner_id,
                 centre_id=enrolment.learner.centre_id,
                 detail={"content_hash": request.content_hash, "evidence_id": evidence.id,
                         "signed_name": typed})
    return request


def _to_evidence(session: Session, request: WitnessRequest, criteria: list[Criterion],
                 text: str, relationship: str) -> Any:
    actor = request.requested_by
    enrolment = request.enrolment
    evidence = add_evidence(
        session, actor=actor, enrolment=enrolment, kind="witness_testimony",
        data=EvidenceInput(
            title=f"Witness testimony: {request.witness_name}",
            activity_on=request.activity_on, activity_place=request.activity_place,
            body_md=text,
            details={"witness_name": request.witness_name,
                     "witness_role": request.witness_role, "relationship": relationship,
                     # The email stays on the request (minimised later), never in the evidence:
                     # signed evidence cannot be edited, contact details must be removable.
                     "witness_contact": f"Held with witness request #{request.id}",
                     "is_expert": request.is_expert,
                     "expert_competence": request.expert_competence},
            personal_data_confirmed=True,
            change_note="Signed by the witness through their link"),
        files=[], today=request.activity_on)
    set_mappings(session, evidence, actor=actor,
                 wanted=[MappingInput(c.id, "Confirmed by the witness") for c in criteria])
    submit_evidence(session, evidence, actor=actor)
    return evidence


def decline(session: Session, raw: str, reason: str) -> WitnessRequest:
    """The witness declines; the link stops working and the requester can see why."""
    request = open_link(session, raw)
    states.move(request, "decline")
    request.decline_reason = " ".join((reason or "").split())[:500] or "No reason given."
    request.used_at = utcnow()
    record_event(session, action="witness.decline", subject_type="witness_request",
                 subject_id=request.id, learner_id=request.enrolment.learner_id,
                 centre_id=request.enrolment.learner.centre_id)
    return request


def warnings_for(session: Session, request: WitnessRequest, unit_criteria: int) -> list[str]:
    """Return what the assessor should look at before relying on this testimony."""
    found = []
    if request.status == states.SIGNED and request.draft_md and (
            " ".join(request.draft_md.split()) == " ".join((request.testimony_md or "").split())):
        found.append("The witness signed the learner's draft without changing a word: check it "
                     "is really their account.")
    if request.decline_reason and "related" in request.decline_reason.lower():
        found.append("The witness says they are related to the learner: this testimony "
                     "cannot be used.")
    if unit_criteria and len(request.criterion_ids) >= unit_criteria:
        found.append("This testimony is mapped to every criterion of the unit; a witness "
                     "testimony must not evidence a whole unit.")
    if request.witness_email:
        email = request.witness_email.strip().lower()
        learner = request.enrolment.learner
        if _is_learners(request.enrolment, email):
            found.append("This request went to the learner's own email address: the learner "
                         "may have signed it themselves. This testimony cannot be relied on.")
        elif (account := _centre_account(session, request.enrolment, email)) is not None:
            who = "another learner" if account.roles <= {Role.LEARNER} else "a member of staff"
            found.append(f"This request went to the address of an account at "
                         f"{learner.centre.name} ({who}, {account.full_name}): a witness must "
                         "be independent of the centre. Check who really signed it.")
        learners = session.scalar(select(func.count(func.distinct(Enrolment.learner_id)))
                                  .select_from(WitnessRequest)
                                  .join(Enrolment, Enrolment.id == WitnessRequest.enrolment_id)
                                  .where(WitnessRequest.witness_email == request.witness_email,
                                         WitnessRequest.status == states.SIGNED)) or 0
        if learners >= SAME_EMAIL_WARNING_AT:
            found.append(f"The same email address has signed testimonies for {learners} "
                         "learners.")
    return found


_EMAIL_IN_TEXT = re.compile(r"[^@\s<>(),;:\"']+@[^@\s<>(),;:\"']+\.[^@\s<>(),;:\"']+")


@dataclass(frozen=True)
class PaperTestimony:
    """A testimony signed on a paper form and added as evidence, not signed through a link."""
    evidence_id: int
    status: str
    name: str
    role: str
    relationship: str
    expert: bool
    witnessed_on: date | None


def paper_testimonies(session: Session, enrolment: Enrolment) -> list[PaperTestimony]:
    """Witness testimonies in the portfolio that no signed request produced, oldest first."""
    from_links = select(WitnessRequest.evidence_id).where(
        WitnessRequest.enrolment_id == enrolment.id, WitnessRequest.evidence_id.is_not(None))
    found = []
    for evidence in session.scalars(select(Evidence).where(
            Evidence.enrolment_id == enrolment.id, Evidence.kind == "witness_testimony",
            Evidence.status != "withdrawn", Evidence.id.not_in(from_links))
            .order_by(Evidence.id)):
        version = current_version(evidence)
        said = version.details or {}
        found.append(PaperTestimony(
            evidence.id, evidence.status, str(said.get("witness_name") or ""),
            str(said.get("witness_role") or ""), str(said.get("relationship") or ""),
            bool(said.get("is_expert")), version.activity_on))
    return found


@dataclass(frozen=True)
class RecordedTestimonyWarning:
    evidence_id: int
    title: str
    message: str


def recorded_testimony_warnings(session: Session, enrolment: Enrolment
                                ) -> list[RecordedTestimonyWarning]:
    """Warn of testimonies added as evidence (paper, scanned) whose witness contact is the
    learner's own email or an account's at the centre: nobody independent can confirm them."""
    learner = enrolment.learner
    found = []
    for evidence in session.scalars(select(Evidence).where(
            Evidence.enrolment_id == enrolment.id, Evidence.kind == "witness_testimony",
            Evidence.status != "withdrawn").order_by(Evidence.id)):
        version = current_version(evidence)
        contact = str((version.details or {}).get("witness_contact") or "")
        for email in {e.strip(".").lower() for e in _EMAIL_IN_TEXT.findall(contact)}:
            if _is_learners(enrolment, email):
                why = ("gives the learner's own email as the witness's contact: the learner "
                       "may have written or signed it themselves")
            elif (account := _centre_account(session, enrolment, email)) is not None:
                who = "another learner" if account.roles <= {Role.LEARNER} else "staff"
                why = (f"gives the email of an account at {learner.centre.name} ({who}, "
                       f"{account.full_name}) as the witness's contact: a witness must be "
                       "independent of the centre")
            else:
                continue
            found.append(RecordedTestimonyWarning(
                evidence.id, version.title,
                f"\u201c{version.title}\u201d {why}. Check who really wrote it before relying "
                "on it."))
    return found


def minimise_contacts(session: Session, *, older_than_days: int) -> int:
    """Empty the witness email of requests finished before the window; keep name and role."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    count = 0
    for request in session.scalars(select(WitnessRequest).where(
            WitnessRequest.contact_minimised_at.is_(None),
            WitnessRequest.status.not_in(states.OPEN),
            WitnessRequest.created_at < cutoff)):
        request.witness_email = ""
        request.contact_minimised_at = utcnow()
        count += 1
    if count:
        record_event(session, action="witness.minimise", subject_type="witness_request",
                     subject_id="*", detail={"requests": count, "older_than_days":
                                             older_than_days})
    return count
