"""IQA sampling services: strategy and assessor rates, plans, samples, outcomes and actions.

The pure plan generator lives in :mod:`portfolio.sampling.plan`; this module loads what it
needs from the database, stores its result, and runs the sampling workflow:

- a **sample** starts by freezing the portfolio as it is (the decision, the evidence it cites at
  the versions cited, their mappings, the reviews, the signatures and the other decisions) into
  a canonical JSON snapshot and its SHA-256; the sample page is drawn from that snapshot only;
- the IQA records an **outcome** (agree, agree with actions, disagree) with a rationale and
  action points, signed like an assessor's decision (password again and typed full name,
  purpose ``iqa_outcome``, bound to the snapshot's hash);
- "disagree" **reopens** the criterion (the decision and what rested on it no longer stand) and
  **raises** the assessor's sampling rate until an IQA lowers it;
- a **unit sample** judges an assessor's live unit sign-off as a whole: its snapshot holds every
  standing decision with its evidence and signatures; "disagree" ends the sign-off and the
  learner's co-signature (a completed enrolment is active again) and raises the rate too;
- **actions** go open -> acknowledged -> responded (by their owner, the assessor) -> closed (by
  the IQA who set them). :data:`ACTION_TRANSITIONS` is the whole rule set.

Every change appends an audit event.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portfolio.assessment.services import (
    SignerConfirmation,
    confirm_signer,
    unit_cosign,
    unit_declaration,
    unit_signoff,
)
from portfolio.assessment.signing import (
    decision_signature_ref,
    live_decisions,
    make_signature,
    sha256_of,
    verify_signature,
)
from portfolio.audit import record_event
from portfolio.criteria.files import METHODS
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from portfolio.evidence.kinds import KINDS
from portfolio.models import (
    AssessorSamplingProfile,
    Criterion,
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceMapping,
    EvidenceReview,
    EvidenceVersion,
    IqaAction,
    IqaSample,
    Role,
    SamplingPlan,
    SamplingPlanItem,
    SamplingStrategy,
    Signature,
    Unit,
    User,
    UserRole,
)
from portfolio.models.sampling import ASSESSOR_RISK_STATUSES
from portfolio.permissions import can_sample, is_admin_of, is_independent_iqa
from portfolio.sampling import plan as planner

# --- strategy ---------------------------------------------------------------------------------

RATE_FIELDS = ("trainee", "newly_qualified", "first_year", "experienced", "after_disagreement",
               "rpl")
RATE_LABELS = {
    "trainee": "Trainee assessor (every decision)",
    "newly_qualified": "Newly qualified assessor (summative decisions)",
    "first_year": "First-year assessor",
    "experienced": "Experienced assessor",
    "after_disagreement": "An assessor after a “disagree” outcome",
    "rpl": "Recognition of prior learning (RPL) claims",
}
DEFAULT_RATES = {"trainee": 100, "newly_qualified": 100, "first_year": 25, "experienced": 10,
                 "after_disagreement": 100, "rpl": 100}
STATUS_LABELS = {
    "trainee": "Trainee",
    "newly_qualified": "Newly qualified",
    "first_year": "First year",
    "experienced": "Experienced",
}
OUTCOME_LABELS = {"agree": "Agree", "agree_with_actions": "Agree with actions",
                  "disagree": "Disagree"}
ACTION_STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged",
                        "responded": "Responded", "closed": "Closed"}
OUTCOME_STATEMENT = ("I have sampled this assessment decision as recorded in the snapshot "
                     "with SHA-256 {hash}, and my outcome is: {outcome}.")
UNIT_OUTCOME_STATEMENT = ("I have sampled this unit's sign-off and the whole portfolio behind "
                          "it as recorded in the snapshot with SHA-256 {hash}, and my outcome "
                          "is: {outcome}.")
MAX_ACTION_DAYS = 366


def is_iqa(user: User) -> bool:
    return user.is_active and user.has_role(Role.IQA)


def can_manage_strategy(user: User) -> bool:
    """The centre's IQAs and admins view and change its sampling strategy."""
    return user.is_active and (user.has_role(Role.IQA) or is_admin_of(user, user.centre_id))


def current_strategy(session: Session, centre_id: int, unit_id: int) -> SamplingStrategy | None:
    """The newest strategy row for the centre and unit (None: the defaults apply)."""
    return session.scalar(select(SamplingStrategy).where(
        SamplingStrategy.centre_id == centre_id, SamplingStrategy.unit_id == unit_id)
        .order_by(SamplingStrategy.id.desc()).limit(1))


def strategy_history(session: Session, centre_id: int, unit_id: int) -> list[SamplingStrategy]:
    return list(session.scalars(select(SamplingStrategy).where(
        SamplingStrategy.centre_id == centre_id, SamplingStrategy.unit_id == unit_id)
        .order_by(SamplingStrategy.id.desc())))


def rates_of(strategy: SamplingStrategy | None) -> dict[str, int]:
    """The strategy's rates as whole percentages (the defaults when there is none)."""
    if strategy is None:
        return dict(DEFAULT_RATES)
    return {name: getattr(strategy, f"{name}_pct") for name in RATE_FIELDS}


def planner_rates(rates: dict[str, int]) -> planner.Rates:
    return planner.Rates(**{name: rates[name] / 100 for name in RATE_FIELDS})


def parse_rates(raw: dict[str, Any]) -> dict[str, int]:
    """Read six whole percentages; ValidationFailed names the first that is wrong."""
    rates: dict[str, int] = {}
    for name in RATE_FIELDS:
        value = str(raw.get(name, "")).strip().removesuffix("%").strip()
        if not re.fullmatch(r"[0-9]{1,3}", value) or not 0 <= int(value) <= 100:
            raise ValidationFailed(f"{RATE_LABELS[name]}: enter a whole percentage from 0 to "
                                   "100.", field=name)
        rates[name] = int(value)
    return rates


def set_strategy(session: Session, *, actor: User, unit: Unit, rates: dict[str, int],
                 reason: str) -> SamplingStrategy:
    """Record a new version of the centre's strategy for a unit (the old ones stay)."""
    if not can_manage_strategy(actor):
        raise PermissionDenied("Only an internal quality assurer or a centre admin changes the "
                               "sampling strategy.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why the strategy changes.", field="reason")
    before = rates_of(current_strategy(session, actor.centre_id, unit.id))
    if rates == before:
        raise InvalidTransition("Those are the rates already in force; nothing was changed.")
    row = SamplingStrategy(centre_id=actor.centre_id, unit_id=unit.id, reason=reason[:2000],
                           changed_by_id=actor.id, changed_at=utcnow(),
                           **{f"{name}_pct": rates[name] for name in RATE_FIELDS})
    session.add(row)
    session.flush()
    record_event(session, action="sampling.strategy_changed", subject_type="sampling_strategy",
                 subject_id=row.id, actor=actor, actor_role=_staff_role(actor),
                 detail={"unit": unit.reference, "before": before, "after": rates})
    return row


def _staff_role(user: User) -> str:
    return Role.IQA.value if user.has_role(Role.IQA) else Role.ADMIN.value


# --- assessor risk profiles -------------------------------------------------------------------

@dataclass(frozen=True)
class AssessorRate:
    assessor: User
    profile: AssessorSamplingProfile | None
    status: str | None  # one of ASSESSOR_RISK_STATUSES, or None: not recorded
    override_pct: int | None
    raised_after_disagreement: bool

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status or "", "Not recorded")

    def rate_label(self, rates: dict[str, int]) -> str:
        if self.override_pct is not None:
            why = "raised after a disagreement" if self.raised_after_disagreement else "set by IQA"
            return f"{self.override_pct}% ({why})"
        if self.status is None:
            return "100% (status not recorded)"
        if self.status == "newly_qualified":
            return (f"{rates['newly_qualified']}% summative, {rates['first_year']}% interim")
        return f"{rates[self.status]}%"

    @property
    def risk(self) -> str:
        """High, medium or low: how closely this assessor's work is watched."""
        if self.raised_after_disagreement or self.status in (None, "trainee"):
            return "High"
        if self.status in ("newly_qualified", "first_year"):
            return "Medium"
        if self.override_pct is not None and self.override_pct >= 50:
            return "High"
        return "Low"


def centre_assessors(session: Session, centre_id: int) -> list[User]:
    return list(session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .where(User.centre_id == centre_id, UserRole.role == Role.ASSESSOR.value)
        .order_by(User.full_name, User.id)))


def current_profile(session: Session, assessor_id: int) -> AssessorSamplingProfile | None:
    return session.scalar(select(AssessorSamplingProfile).where(
        AssessorSamplingProfile.assessor_id == assessor_id)
        .order_by(AssessorSamplingProfile.id.desc()).limit(1))


def assessor_rate(session: Session, assessor: User) -> AssessorRate:
    profile = current_profile(session, assessor.id)
    status = profile.status if profile else None
    if assessor.assessor_status == "trainee":
        status = "trainee"  # a trainee's decisions are always sampled as a trainee's
    return AssessorRate(assessor, profile, status, profile.override_pct if profile else None,
                        bool(profile and profile.raised_after_disagreement))


def profile_history(session: Session, centre_id: int) -> list[AssessorSamplingProfile]:
    return list(session.scalars(select(AssessorSamplingProfile).where(
        AssessorSamplingProfile.centre_id == centre_id)
        .order_by(AssessorSamplingProfile.id.desc())))


def set_profile(session: Session, *, actor: User, assessor: User, status: str | None,
                override_pct: int | None, reason: str) -> AssessorSamplingProfile:
    """Record an assessor's status and, optionally, a rate that wins over the strategy's.

    Anyone who may manage the strategy can raise a rate; only an IQA lowers or clears one.
    """
    if not can_manage_strategy(actor):
        raise PermissionDenied("Only an internal quality assurer or a centre admin sets "
                               "assessors' sampling rates.")
    if assessor.centre_id != actor.centre_id or not assessor.has_role(Role.ASSESSOR):
        raise NotFound("No such assessor at your centre.")
    if assessor.id == actor.id:
        raise PermissionDenied("You cannot set the sampling rate for your own decisions.")
    if status is not None and status not in ASSESSOR_RISK_STATUSES:
        raise ValidationFailed("Choose the assessor's status from the list.", field="status")
    if assessor.assessor_status == "trainee" and status not in (None, "trainee"):
        raise ValidationFailed(f"{assessor.full_name} is a trainee assessor: their status stays "
                               "“Trainee” until an admin records them as qualified.",
                               field="status")
    if override_pct is not None and not 0 <= override_pct <= 100:
        raise ValidationFailed("The rate must be a whole percentage from 0 to 100.",
                               field="override_pct")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why the assessor's rate changes.", field="reason")
    now_rate = assessor_rate(session, assessor)
    old = now_rate.override_pct
    lowers = old is not None and (override_pct is None or override_pct < old)
    if lowers and not actor.has_role(Role.IQA):
        raise PermissionDenied("Only an internal quality assurer can lower an assessor's "
                               "sampling rate.")
    if (status, override_pct) == (now_rate.profile.status if now_rate.profile else None, old):
        raise InvalidTransition("That is the assessor's current status and rate; nothing was "
                                "changed.")
    # A raised rate stays "after disagreement" until someone changes the rate itself.
    keeps_raise = now_rate.raised_after_disagreement and override_pct == old
    row = AssessorSamplingProfile(
        centre_id=actor.centre_id, assessor_id=assessor.id, status=status,
        override_pct=override_pct, raised_after_disagreement=keeps_raise,
        source="iqa" if actor.has_role(Role.IQA) else "admin", reason=reason[:2000],
        changed_by_id=actor.id, changed_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, action="sampling.assessor_rate_changed", subject_type="user",
                 subject_id=assessor.id, actor=actor, actor_role=_staff_role(actor),
                 detail={"status": status, "override_pct": override_pct, "before": old})
    return row


def _raise_after_disagreement(session: Session, *, actor: User, assessor: User,
                              rates: dict[str, int], sample: IqaSample) -> None:
    now_rate = assessor_rate(session, assessor)
    target = rates["after_disagreement"]
    if now_rate.override_pct is not None and now_rate.override_pct >= target:
        target = now_rate.override_pct
    row = AssessorSamplingProfile(
        centre_id=assessor.centre_id, assessor_id=assessor.id,
        status=now_rate.profile.status if now_rate.profile else None, override_pct=target,
        raised_after_disagreement=True, source="disagree",
        reason=f"Raised automatically: IQA disagreed with a decision (sample #{sample.id}).",
        changed_by_id=actor.id, changed_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, action="sampling.assessor_rate_raised", subject_type="user",
                 subject_id=assessor.id, actor=actor, actor_role=Role.IQA.value,
                 detail={"override_pct": target, "before": now_rate.override_pct,
                         "sample_id": sample.id})


def risks_for(session: Session, assessor_ids: set[int]) -> dict[int, planner.AssessorRisk]:
    """Risk profiles for the generator; an assessor with nothing recorded is left out (100%)."""
    risks: dict[int, planner.AssessorRisk] = {}
    for assessor in session.scalars(select(User).where(User.id.in_(assessor_ids))):
        rate = assessor_rate(session, assessor)
        if rate.override_pct is not None:
            risks[assessor.id] = planner.AssessorRisk(
                assessor.id, rate.status or "experienced",
                recent_disagreement=rate.raised_after_disagreement,
                override_rate=rate.override_pct / 100)
        elif rate.status is not None:
            risks[assessor.id] = planner.AssessorRisk(assessor.id, rate.status)
    return risks


# --- candidates and plans ---------------------------------------------------------------------

def _signed_off_enrolments(session: Session, enrolment_ids: set[int]) -> set[int]:
    if not enrolment_ids:
        return set()
    return set(session.scalars(select(Signature.enrolment_id).where(
        Signature.enrolment_id.in_(enrolment_ids), Signature.purpose == "unit_signoff",
        Signature.invalidated_at.is_(None))))


def _decision_methods(session: Session, decisions: list[CriterionDecision]
                      ) -> dict[int, tuple[tuple[str, ...], bool]]:
    """Decision id -> (methods of the evidence it cites, whether any of it is an RPL claim)."""
    wanted = {(item["evidence_id"], item["version"]) for d in decisions for item in d.evidence}
    if not wanted:
        return {}
    rows = session.execute(
        select(Evidence.id, Evidence.kind, EvidenceVersion.version, EvidenceVersion.details,
               EvidenceVersion.is_simulated)
        .join(EvidenceVersion, EvidenceVersion.evidence_id == Evidence.id)
        .where(Evidence.id.in_({e for e, _ in wanted}))).all()
    method = {(r.id, r.version): (KINDS[r.kind].method_for(r.details or {}, r.is_simulated),
                                  r.kind == "rpl") for r in rows}
    result = {}
    for d in decisions:
        found = [method[(i["evidence_id"], i["version"])] for i in d.evidence
                 if (i["evidence_id"], i["version"]) in method]
        result[d.id] = (tuple(sorted({m for m, _ in found})), any(r for _, r in found))
    return result


def sampleable_decisions(session: Session, iqa: User, unit_id: int, *,
                         start: date | None = None, end: date | None = None
                         ) -> list[CriterionDecision]:
    """Signed "met" decisions on the unit in enrolments this IQA quality-assures."""
    query = (select(CriterionDecision).join(Enrolment,
                                            Enrolment.id == CriterionDecision.enrolment_id)
             .where(Enrolment.iqa_id == iqa.id, Enrolment.unit_id == unit_id,
                    CriterionDecision.status == "met")
             .order_by(CriterionDecision.id))
    decisions = list(session.scalars(query))
    if start is not None and end is not None:
        decisions = [d for d in decisions if start <= d.decided_at.date() <= end]
    return decisions


def candidates_of(session: Session, decisions: list[CriterionDecision]
                  ) -> list[planner.Candidate]:
    signed_off = _signed_off_enrolments(session, {d.enrolment_id for d in decisions})
    methods = _decision_methods(session, decisions)
    out = []
    for d in decisions:
        used, rpl = methods.get(d.id, ((), False))
        out.append(planner.Candidate(
            id=d.id, assessor_id=d.decided_by_id, learner_id=d.enrolment.learner_id,
            employer=d.enrolment.employer, unit=d.enrolment.unit.reference, methods=used,
            stage="summative" if d.enrolment_id in signed_off else "interim",
            decided_on=d.decided_at.date(), rpl=rpl,
            countersigned_by_id=d.countersigned_by_id))
    return out


def _period_key(start: date, end: date) -> str:
    return f"{start.isoformat()}..{end.isoformat()}"


def _inputs(candidates: list[planner.Candidate], risks: dict[int, planner.AssessorRisk],
            rates: dict[str, int], iqa_id: int, start: date, end: date) -> dict[str, Any]:
    return {
        "iqa_id": iqa_id, "period": _period_key(start, end), "rates": rates,
        # The countersigner is appended only when there is one, so plans made before it was
        # an input keep the digest they were stored with.
        "candidates": [[c.id, c.assessor_id, c.learner_id, c.employer, c.unit, list(c.methods),
                        c.stage, c.decided_on.isoformat(), c.rpl,
                        *([c.countersigned_by_id] if c.countersigned_by_id else [])]
                       for c in candidates],
        "risks": [[r.assessor_id, r.status, r.recent_disagreement, r.override_rate]
                  for _, r in sorted(risks.items())],
    }


def _compute(session: Session, iqa: User, unit: Unit, start: date, end: date,
             rates: dict[str, int]) -> tuple[planner.Plan, list[planner.Candidate], str]:
    decisions = sampleable_decisions(session, iqa, unit.id, start=start, end=end)
    candidates = candidates_of(session, decisions)
    risks = risks_for(session, {c.assessor_id for c in candidates})
    result = planner.generate_plan(candidates, risks, iqa_id=iqa.id,
                                   period_key=_period_key(start, end),
                                   rates=planner_rates(rates))
    digest = sha256_of(_inputs(candidates, risks, rates, iqa.id, start, end))
    return result, candidates, digest


def generate_plan(session: Session, *, iqa: User, unit: Unit, start: date,
                  end: date) -> SamplingPlan:
    """Generate and store a plan for this IQA, unit and period with the strategy in force."""
    if not is_iqa(iqa):
        raise PermissionDenied("Only an internal quality assurer makes a sampling plan.")
    if end < start:
        raise ValidationFailed("The period must end on or after the day it starts.",
                               field="period_end")
    if (end - start).days > 366:
        raise ValidationFailed("A plan covers at most a year.", field="period_end")
    rates = rates_of(current_strategy(session, iqa.centre_id, unit.id))
    result, candidates, digest = _compute(session, iqa, unit, start, end, rates)
    by_id = {c.id: c for c in candidates}
    plan = SamplingPlan(centre_id=iqa.centre_id, unit_id=unit.id, iqa_id=iqa.id,
                        period_start=start, period_end=end, rates=rates,
                        generated_ids=result.candidate_ids, inputs_sha256=digest,
                        created_at=utcnow())
    session.add(plan)
    session.flush()
    decisions = {d.id: d for d in session.scalars(select(CriterionDecision).where(
        CriterionDecision.id.in_(result.candidate_ids)))} if result.items else {}
    for decision in decisions.values():
        _check_independent(iqa, decision)  # the generator leaves them out; never trust that
    for item in result.items:
        plan.items.append(SamplingPlanItem(
            plan_id=plan.id, decision_id=item.candidate_id,
            enrolment_id=decisions[item.candidate_id].enrolment_id,
            reason=_in_words(session, item.reason)[:300],
            stage=by_id[item.candidate_id].stage, source="generated", added_by_id=iqa.id,
            added_at=utcnow()))
    session.flush()
    record_event(session, action="sampling.plan_generated", subject_type="sampling_plan",
                 subject_id=plan.id, actor=iqa, actor_role=Role.IQA.value,
                 detail={"unit": unit.reference, "period": _period_key(start, end),
                         "items": result.candidate_ids, "inputs_sha256": digest,
                         "rates": rates})
    return plan


def _in_words(session: Session, reason: str) -> str:
    """The generator's reason with learners' names and methods' labels instead of keys."""
    def learner(match: re.Match[str]) -> str:
        user = session.get(User, int(match.group(1)))
        return f"learner {user.full_name}" if user else match.group(0)

    def methods(match: re.Match[str]) -> str:
        keys = [k.strip() for k in match.group(1).split(",")]
        return "method " + ", ".join(METHODS.get(k, k).lower() for k in keys)

    reason = re.sub(r"learner (\d+)", learner, reason)
    return re.sub(r"method ((?:[a-z_]+)(?:, [a-z_]+)*)", methods, reason)


@dataclass(frozen=True)
class Reproduction:
    same_inputs: bool
    same_items: bool
    now_ids: list[int]


def reproduce(session: Session, plan: SamplingPlan) -> Reproduction:
    """Run the generator again on today's data with the plan's rates and compare."""
    result, _, digest = _compute(session, plan.iqa, plan.unit, plan.period_start,
                                 plan.period_end, plan.rates)
    return Reproduction(digest == plan.inputs_sha256,
                        result.candidate_ids == list(plan.generated_ids), result.candidate_ids)


def live_items(plan: SamplingPlan) -> list[SamplingPlanItem]:
    return [i for i in plan.items if i.removed_at is None]


def plan_coverage(session: Session, plan: SamplingPlan) -> planner.Coverage:
    """Coverage of the plan as it stands (with items added or removed by hand)."""
    decisions = sampleable_decisions(session, plan.iqa, plan.unit_id, start=plan.period_start,
                                     end=plan.period_end)
    known = {d.id for d in decisions}
    extra = [i.decision for i in live_items(plan) if i.decision_id not in known]
    candidates = candidates_of(session, decisions + extra)
    # Items whose decision has since been reopened still count as sampled.
    return planner.coverage_of(candidates, [i.decision_id for i in live_items(plan)],
                               iqa_id=plan.iqa_id)


def get_plan(session: Session, plan_id: int, user: User) -> SamplingPlan:
    plan = session.get(SamplingPlan, plan_id)
    if plan is None or plan.iqa_id != user.id or not is_iqa(user):
        raise NotFound("No such sampling plan, or it is not yours.")
    return plan


def list_plans(session: Session, iqa: User) -> list[SamplingPlan]:
    return list(session.scalars(select(SamplingPlan).where(SamplingPlan.iqa_id == iqa.id)
                                .order_by(SamplingPlan.id.desc())))


def addable_decisions(session: Session, plan: SamplingPlan) -> list[CriterionDecision]:
    """Decisions the IQA may add by hand: sampleable, not their own, not already in the plan."""
    present = {i.decision_id for i in live_items(plan)}
    return [d for d in sampleable_decisions(session, plan.iqa, plan.unit_id)
            if d.id not in present and is_independent_iqa(plan.iqa_id, d.decided_by_id,
                                                          d.countersigned_by_id,
                                                          d.enrolment.learner_id)]


def _check_independent(iqa: User, decision: CriterionDecision) -> None:
    """Refuse a plan item or sample of a decision the IQA made or countersigned."""
    if not is_independent_iqa(iqa.id, decision.decided_by_id, decision.countersigned_by_id,
                              decision.enrolment.learner_id):
        raise PermissionDenied("An internal quality assurer never samples a decision they made "
                               "or countersigned.")


def add_item(session: Session, plan: SamplingPlan, *, actor: User, decision_id: int,
             reason: str) -> SamplingPlanItem:
    if plan.iqa_id != actor.id or not is_iqa(actor):
        raise PermissionDenied("Only the plan's IQA changes it.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why you add this decision to the sample.", field="reason")
    decision = next((d for d in addable_decisions(session, plan) if d.id == decision_id), None)
    if decision is None:
        raise ValidationFailed("Choose a decision from the list: one of your learners' signed "
                               "decisions on this unit that is not already in the plan and "
                               "that you did not make.", field="decision_id")
    _check_independent(actor, decision)
    stage = candidates_of(session, [decision])[0].stage
    item = SamplingPlanItem(plan_id=plan.id, decision_id=decision.id,
                            enrolment_id=decision.enrolment_id,
                            reason=f"added by hand: {reason}"[:300], stage=stage,
                            source="manual", added_by_id=actor.id, added_at=utcnow())
    plan.items.append(item)
    session.flush()
    record_event(session, action="sampling.item_added", subject_type="sampling_plan",
                 subject_id=plan.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=decision.enrolment.learner_id,
                 detail={"item_id": item.id, "decision_id": decision.id, "reason": reason})
    return item


def remove_item(session: Session, item: SamplingPlanItem, *, actor: User,
                reason: str) -> None:
    plan = item.plan
    if plan.iqa_id != actor.id or not is_iqa(actor):
        raise PermissionDenied("Only the plan's IQA changes it.")
    if item.removed_at is not None:
        raise InvalidTransition("That decision has already been taken out of the plan.")
    if item.sample is not None:
        raise InvalidTransition("This decision has been sampled; a started sample stays in the "
                                "plan.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("Say why you take this decision out of the sample.",
                               field="reason")
    item.removed_at = utcnow()
    item.removed_by_id = actor.id
    item.removed_reason = reason[:300]
    session.flush()
    record_event(session, action="sampling.item_removed", subject_type="sampling_plan",
                 subject_id=plan.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=item.enrolment.learner_id,
                 detail={"item_id": item.id, "decision_id": item.decision_id,
                         "reason": reason})


def get_item(session: Session, item_id: int, user: User) -> SamplingPlanItem:
    item = session.get(SamplingPlanItem, item_id)
    if item is None or item.plan.iqa_id != user.id or not is_iqa(user):
        raise NotFound("No such plan item, or it is not in your plan.")
    return item


# --- snapshot ---------------------------------------------------------------------------------

def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _signature_entry(session: Session, signature: Signature) -> dict[str, Any]:
    verdict = verify_signature(session, signature)
    return {"id": signature.id, "purpose": signature.purpose,
            "signer": signature.signer.full_name, "signer_role": signature.signer_role,
            "typed_name": signature.typed_name, "statement": signature.statement,
            "signed_at": _when(signature.signed_at), "content_hash": signature.content_hash,
            "state": verdict.state, "state_reason": verdict.reason}


def _evidence_entries(session: Session, decision: CriterionDecision) -> list[dict[str, Any]]:
    """The evidence a decision cites, at the versions cited, with mappings and reviews."""
    evidence_items = []
    for cited in decision.evidence:
        evidence = session.get(Evidence, cited["evidence_id"])
        version = session.scalar(select(EvidenceVersion).where(
            EvidenceVersion.evidence_id == cited["evidence_id"],
            EvidenceVersion.version == cited["version"]))
        if evidence is None or version is None:
            continue
        kind = KINDS[evidence.kind]
        mappings = session.execute(
            select(EvidenceMapping.source, EvidenceMapping.rationale, EvidenceMapping.location,
                   EvidenceMapping.criterion_id)
            .where(EvidenceMapping.evidence_id == evidence.id,
                   EvidenceMapping.removed_at.is_(None))
            .order_by(EvidenceMapping.criterion_id, EvidenceMapping.source)).all()
        numbers = dict(session.execute(select(Criterion.id, Criterion.number).where(
            Criterion.id.in_({m.criterion_id for m in mappings} or {0}))).all())
        reviews = session.scalars(select(EvidenceReview).where(
            EvidenceReview.evidence_id == evidence.id,
            EvidenceReview.version == version.version).order_by(EvidenceReview.id))
        evidence_items.append({
            "evidence_id": evidence.id, "version": version.version,
            "current_version": evidence.current_version, "status": evidence.status,
            "kind": evidence.kind, "kind_label": kind.label,
            "method": kind.method_for(version.details or {}, version.is_simulated),
            "title": version.title, "activity_on": _when(version.activity_on),
            "activity_place": version.activity_place, "body_md": version.body_md,
            "details": version.details or {}, "is_simulated": version.is_simulated,
            "files": [{"filename": f.filename, "sha256": f.sha256, "size": f.size,
                       "media_type": f.media_type} for f in version.files],
            "mappings": [{"criterion": numbers.get(m.criterion_id, "?"), "source": m.source,
                          "rationale": m.rationale, "location": m.location} for m in mappings],
            "reviews": [{"outcome": r.outcome, "reviewer": r.reviewer.full_name,
                         "at": _when(r.created_at), "feedback_md": r.feedback_md,
                         "varcs": r.varcs} for r in reviews],
        })
    return evidence_items


def _decision_signatures(session: Session, decision: CriterionDecision) -> list[dict[str, Any]]:
    signatures = [session.get(Signature, decision.signature_id)]
    if decision.countersignature_id:
        signatures.append(session.get(Signature, decision.countersignature_id))
    return [_signature_entry(session, s) for s in signatures if s is not None]


def _enrolment_entry(enrolment: Enrolment) -> dict[str, Any]:
    return {"id": enrolment.id, "learner": enrolment.learner.full_name,
            "employer": enrolment.employer, "workplace": enrolment.workplace,
            "assessor": enrolment.assessor.full_name,
            "unit": enrolment.unit.reference, "unit_title": enrolment.unit.title,
            "unit_version": enrolment.unit.version, "status": enrolment.status}


def _decision_entry(decision: CriterionDecision) -> dict[str, Any]:
    return {"id": decision.id, "criterion": decision.criterion.number,
            "criterion_text": decision.criterion.text, "status": decision.status,
            "decided_by": decision.decided_by.full_name,
            "decided_at": _when(decision.decided_at), "note_md": decision.note_md,
            "needs_countersignature": bool(decision.needs_countersignature),
            "countersigned_by": (decision.countersigned_by.full_name
                                 if decision.countersigned_by else None)}


def build_snapshot(session: Session, decision: CriterionDecision) -> dict[str, Any]:
    """Everything the IQA judges, as it is now, in one canonical JSON-ready dict."""
    enrolment = decision.enrolment
    others = session.scalars(select(CriterionDecision).where(
        CriterionDecision.enrolment_id == enrolment.id).order_by(CriterionDecision.id))
    return {
        "taken_at": _when(utcnow()),
        "enrolment": _enrolment_entry(enrolment),
        "decision": _decision_entry(decision),
        "evidence": _evidence_entries(session, decision),
        "signatures": _decision_signatures(session, decision),
        "other_decisions": [{"criterion": d.criterion.number, "status": d.status,
                             "decided_by": d.decided_by.full_name,
                             "decided_at": _when(d.decided_at)}
                            for d in others if d.id != decision.id],
    }


def build_unit_snapshot(session: Session, enrolment: Enrolment,
                        signoff: Signature) -> dict[str, Any]:
    """The whole portfolio behind a unit sign-off, as it is now: the sign-off and the learner's
    declaration and co-signature, then every standing decision with its evidence (at the
    versions cited, with mappings and reviews) and signatures, in criterion order."""
    decisions = sorted(live_decisions(session, enrolment.id),
                       key=lambda d: (d.criterion_id, d.id))
    unit_signatures = [signoff] + [s for s in (unit_declaration(session, enrolment),
                                               unit_cosign(session, enrolment)) if s is not None]
    return {
        "scope": "unit",
        "taken_at": _when(utcnow()),
        "enrolment": _enrolment_entry(enrolment),
        "signoff": {"id": signoff.id, "signed_by": signoff.signer.full_name,
                    "signed_at": _when(signoff.signed_at)},
        "signatures": [_signature_entry(session, s) for s in unit_signatures],
        "decisions": [{"decision": _decision_entry(d),
                       "evidence": _evidence_entries(session, d),
                       "signatures": _decision_signatures(session, d)} for d in decisions],
    }


def snapshot_intact(sample: IqaSample) -> bool:
    return sha256_of(sample.snapshot) == sample.snapshot_sha256


# --- samples and outcomes ---------------------------------------------------------------------

def _check_may_sample(actor: User, decision: CriterionDecision, enrolment: Enrolment) -> None:
    if not can_sample(actor, enrolment):
        raise PermissionDenied("Only the learner's internal quality assurer samples this "
                               "decision.")
    _check_independent(actor, decision)


def start_sample(session: Session, item: SamplingPlanItem, *, actor: User) -> IqaSample:
    """Freeze the portfolio as it is into the sample's snapshot and start sampling."""
    if item.plan.iqa_id != actor.id:
        raise PermissionDenied("Only the plan's IQA samples its decisions.")
    decision, enrolment = item.decision, item.enrolment
    _check_may_sample(actor, decision, enrolment)
    if item.removed_at is not None:
        raise InvalidTransition("This decision was taken out of the plan.")
    if item.sample is not None:
        raise InvalidTransition("This decision is already being sampled.")
    if decision.status != "met":
        raise InvalidTransition("This decision no longer stands (it is "
                                f"{decision.status.replace('_', ' ')}), so there is nothing "
                                "to sample.")
    snapshot = build_snapshot(session, decision)
    sample = IqaSample(plan_item=item, decision_id=decision.id, enrolment_id=enrolment.id,
                       iqa_id=actor.id, status="in_progress", started_at=utcnow(),
                       snapshot=snapshot, snapshot_sha256=sha256_of(snapshot), rationale_md="")
    session.add(sample)
    session.flush()
    record_event(session, action="iqa.sample_started", subject_type="iqa_sample",
                 subject_id=sample.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"decision_id": decision.id, "snapshot_sha256": sample.snapshot_sha256})
    return sample


def _check_may_sample_unit(session: Session, actor: User, enrolment: Enrolment,
                           signoff: Signature) -> None:
    if not can_sample(actor, enrolment):
        raise PermissionDenied("Only the learner's internal quality assurer samples this "
                               "unit.")
    if actor.id == signoff.signer_id or any(
            actor.id in (d.decided_by_id, d.countersigned_by_id)
            for d in live_decisions(session, enrolment.id)):
        raise PermissionDenied("An internal quality assurer never samples a unit they signed "
                               "off, or decisions in it they made or countersigned.")


def unit_sample_of(session: Session, signoff_id: int) -> IqaSample | None:
    return session.scalar(select(IqaSample).where(IqaSample.signoff_id == signoff_id))


def start_unit_sample(session: Session, enrolment: Enrolment, *, actor: User) -> IqaSample:
    """Freeze the whole signed-off portfolio into a unit sample's snapshot and start sampling."""
    signoff = unit_signoff(session, enrolment)
    if not can_sample(actor, enrolment):
        raise PermissionDenied("Only the learner's internal quality assurer samples this "
                               "unit.")
    if signoff is None:
        raise InvalidTransition("This unit has no sign-off that stands, so there is nothing to "
                                "sample as a whole yet.")
    _check_may_sample_unit(session, actor, enrolment, signoff)
    if unit_sample_of(session, signoff.id) is not None:
        raise InvalidTransition("This unit sign-off is already being sampled.")
    snapshot = build_unit_snapshot(session, enrolment, signoff)
    sample = IqaSample(scope="unit", signoff_id=signoff.id, enrolment_id=enrolment.id,
                       iqa_id=actor.id, status="in_progress", started_at=utcnow(),
                       snapshot=snapshot, snapshot_sha256=sha256_of(snapshot), rationale_md="")
    session.add(sample)
    session.flush()
    record_event(session, action="iqa.sample_started", subject_type="iqa_sample",
                 subject_id=sample.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"scope": "unit", "signoff_id": signoff.id,
                         "snapshot_sha256": sample.snapshot_sha256})
    return sample


def unit_sampling_ready(session: Session, iqa: User) -> list[tuple[Enrolment, Signature]]:
    """This IQA's enrolments whose unit sign-off stands and has not been sampled yet (leaving
    out any the IQA may not sample: their own sign-off or decisions)."""
    ready = []
    for enrolment in session.scalars(select(Enrolment).where(Enrolment.iqa_id == iqa.id)
                                     .order_by(Enrolment.id)):
        if not can_sample(iqa, enrolment):
            continue
        signoff = unit_signoff(session, enrolment)
        if signoff is None or unit_sample_of(session, signoff.id) is not None:
            continue
        try:
            _check_may_sample_unit(session, iqa, enrolment, signoff)
        except PermissionDenied:
            continue
        ready.append((enrolment, signoff))
    return ready


def get_sample(session: Session, sample_id: int, user: User) -> IqaSample:
    """The sample's IQA sees it, and so does the assessor whose work it judged."""
    sample = session.get(IqaSample, sample_id)
    if sample is None or not (
            (sample.iqa_id == user.id and is_iqa(user))
            or (sample.assessor_id == user.id and user.is_active)):
        raise NotFound("No such sample, or it is not one you can see.")
    return sample


@dataclass(frozen=True)
class ActionInput:
    description: str
    due_on: date | None


def _check_actions(actions: list[ActionInput], today: date) -> list[ActionInput]:
    wanted = [a for a in actions if (a.description or "").strip() or a.due_on]
    for n, action in enumerate(wanted, 1):
        if not action.description.strip():
            raise ValidationFailed(f"Action {n}: say what the assessor must do.",
                                   field="action_description")
        if action.due_on is None:
            raise ValidationFailed(f"Action {n}: give a due date.", field="action_due_on")
        if action.due_on < today:
            raise ValidationFailed(f"Action {n}: the due date is in the past.",
                                   field="action_due_on")
        if action.due_on > today + timedelta(days=MAX_ACTION_DAYS):
            raise ValidationFailed(f"Action {n}: the due date is more than a year away.",
                                   field="action_due_on")
    return wanted


def record_outcome(session: Session, sample: IqaSample, *, actor: User, outcome: str,
                   rationale_md: str, actions: list[ActionInput],
                   confirmation: SignerConfirmation, max_failures: int, lockout_minutes: int,
                   today: date) -> Signature:
    """Sign the sample's outcome. "disagree" reopens the criterion (or, for a unit sample,
    ends the unit sign-off) and raises the assessor's rate."""
    decision, enrolment = sample.decision, sample.enrolment
    if sample.iqa_id != actor.id:
        raise PermissionDenied("Only the IQA who took the sample records its outcome.")
    if decision is not None:
        _check_may_sample(actor, decision, enrolment)
    else:
        assert sample.signoff is not None
        _check_may_sample_unit(session, actor, enrolment, sample.signoff)
    if sample.status != "in_progress":
        raise InvalidTransition("This sample's outcome has already been signed; it cannot "
                                "change.")
    if outcome not in OUTCOME_LABELS:
        raise ValidationFailed("Choose the outcome: agree, agree with actions or disagree.",
                               field="outcome")
    rationale = (rationale_md or "").strip()
    if not rationale:
        raise ValidationFailed("Give the rationale for your outcome.", field="rationale_md")
    wanted = _check_actions(actions, today)
    if outcome == "agree_with_actions" and not wanted:
        raise ValidationFailed("“Agree with actions” needs at least one action.",
                               field="action_description")
    if outcome == "agree" and wanted:
        raise ValidationFailed("An “agree” outcome has no actions: choose “agree with "
                               "actions” instead.", field="outcome")
    if outcome == "disagree" and decision is not None and decision.status != "met":
        raise InvalidTransition("This decision no longer stands, so there is nothing to "
                                "reopen. Reload the page.")
    if outcome == "disagree" and decision is None and getattr(
            unit_signoff(session, enrolment), "id", None) != sample.signoff_id:
        raise InvalidTransition("This unit sign-off no longer stands, so there is nothing to "
                                "reopen. Reload the page.")
    if not snapshot_intact(sample):
        raise InvalidTransition("The sample's snapshot does not match its hash: it was altered "
                                "outside the app. Nothing was signed.")
    typed = confirm_signer(session, actor, confirmation, max_failures=max_failures,
                           lockout_minutes=lockout_minutes)
    now = utcnow()
    owner = sample.assessor
    content: dict[str, Any] = {
        "sample_id": sample.id, "enrolment_id": enrolment.id, "outcome": outcome,
        "rationale_md": rationale, "snapshot_sha256": sample.snapshot_sha256,
        "actions": [{"description": a.description.strip(), "due_on": a.due_on.isoformat(),
                     "owner_id": owner.id} for a in wanted],
    }
    if decision is not None:
        content |= {"decision_id": decision.id, "criterion": decision.criterion.number,
                    "signatures": [decision_signature_ref(
                        session.get(Signature, decision.signature_id))]}
        statement = OUTCOME_STATEMENT
    else:
        assert sample.signoff is not None
        content |= {"scope": "unit", "signoff_id": sample.signoff_id,
                    "signatures": [decision_signature_ref(sample.signoff)]}
        statement = UNIT_OUTCOME_STATEMENT
    signature = make_signature(session,
        enrolment=enrolment, purpose="iqa_outcome", subject_type="iqa_sample",
        subject_id=sample.id, signer_id=actor.id, signer_role=Role.IQA.value, typed_name=typed,
        statement=statement.format(hash=sample.snapshot_sha256,
                                   outcome=OUTCOME_LABELS[outcome].lower()),
        content=content, signed_at=now)
    session.add(signature)
    session.flush()
    sample.status, sample.outcome, sample.rationale_md = "completed", outcome, rationale
    sample.signature_id, sample.completed_at = signature.id, now
    for action in wanted:
        session.add(IqaAction(sample_id=sample.id, enrolment_id=enrolment.id, owner_id=owner.id,
                              description=action.description.strip(), due_on=action.due_on,
                              status="open", created_at=now))
    session.flush()
    record_event(session, action="signature.iqa_outcome", subject_type="signature",
                 subject_id=signature.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"content_hash": signature.content_hash, "sample_id": sample.id,
                         "outcome": outcome})
    record_event(session, action="iqa.outcome_recorded", subject_type="iqa_sample",
                 subject_id=sample.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id,
                 detail={"outcome": outcome, "scope": sample.scope,
                         "decision_id": sample.decision_id, "signoff_id": sample.signoff_id,
                         "actions": len(wanted)})
    if outcome == "disagree":
        if decision is not None:
            _reopen(session, decision, actor=actor, sample=sample)
        else:
            _reopen_unit(session, enrolment, actor=actor, sample=sample)
        rates = rates_of(current_strategy(session, enrolment.learner.centre_id,
                                          enrolment.unit_id))
        _raise_after_disagreement(session, actor=actor, assessor=owner, rates=rates,
                                  sample=sample)
    return signature


def _reopen(session: Session, decision: CriterionDecision, *, actor: User,
            sample: IqaSample) -> None:
    """The decision no longer stands; neither do its countersignature and the unit sign-off."""
    now = utcnow()
    reason = (f"the internal quality assurer {actor.full_name} disagreed with it on "
              f"{now:%d %b %Y} (sample #{sample.id})")
    decision.status = "reopened"
    decision.ended_at = now
    decision.ended_reason = reason
    ended = []
    for signature in session.scalars(select(Signature).where(
            Signature.enrolment_id == decision.enrolment_id,
            Signature.invalidated_at.is_(None))):
        if signature.id in (decision.signature_id, decision.countersignature_id) or \
                signature.purpose in ("unit_signoff", "unit_cosign"):
            signature.invalidated_at = now
            signature.invalidated_reason = reason
            ended.append(signature.id)
    enrolment = decision.enrolment
    detail: dict[str, Any] = {"decision_id": decision.id, "criterion": decision.criterion.number,
                              "signatures": ended, "sample_id": sample.id}
    if enrolment.status == "completed":
        enrolment.status = "active"
        detail["enrolment_reopened"] = True
    session.flush()
    record_event(session, action="decision.reopened", subject_type="decision",
                 subject_id=decision.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id, detail=detail)


def _reopen_unit(session: Session, enrolment: Enrolment, *, actor: User,
                 sample: IqaSample) -> None:
    """The unit sign-off and the learner's co-signature no longer stand; a completed
    enrolment is active again (so it cannot be claimed). The decisions themselves stand."""
    now = utcnow()
    reason = (f"the internal quality assurer {actor.full_name} disagreed with the unit "
              f"sign-off on {now:%d %b %Y} (sample #{sample.id})")
    ended = []
    for signature in session.scalars(select(Signature).where(
            Signature.enrolment_id == enrolment.id, Signature.invalidated_at.is_(None),
            Signature.purpose.in_(("unit_signoff", "unit_cosign")))):
        signature.invalidated_at = now
        signature.invalidated_reason = reason
        ended.append(signature.id)
    detail: dict[str, Any] = {"signatures": ended, "sample_id": sample.id,
                              "signoff_id": sample.signoff_id}
    if enrolment.status == "completed":
        enrolment.status = "active"
        detail["enrolment_reopened"] = True
    session.flush()
    record_event(session, action="unit.signoff_reopened", subject_type="enrolment",
                 subject_id=enrolment.id, actor=actor, actor_role=Role.IQA.value,
                 learner_id=enrolment.learner_id, detail=detail)


# --- actions ----------------------------------------------------------------------------------

# (status, step) -> (who may take it, the status after). Anything else is refused.
ACTION_TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("open", "acknowledge"): ("owner", "acknowledged"),
    ("acknowledged", "respond"): ("owner", "responded"),
    ("responded", "respond"): ("owner", "responded"),  # the owner may add to the response
    ("responded", "close"): ("iqa", "closed"),
}
_REFUSALS = {
    "acknowledge": "Only an open action can be acknowledged.",
    "respond": "Acknowledge the action before responding, and respond before it is closed.",
    "close": "An action can be closed only once its owner has responded.",
}


def get_action(session: Session, action_id: int, user: User) -> IqaAction:
    """The action's owner and the IQA who set it see it."""
    action = session.get(IqaAction, action_id)
    if action is None or not user.is_active or user.id not in (action.owner_id,
                                                               action.sample.iqa_id):
        raise NotFound("No such action, or it is not one you can see.")
    return action


def advance_action(session: Session, action: IqaAction, *, actor: User, step: str,
                   text_md: str = "") -> IqaAction:
    """Take one step in an action's life; the transition table says who and from where."""
    rule = ACTION_TRANSITIONS.get((action.status, step))
    if step not in _REFUSALS:
        raise ValidationFailed("Unknown step.")
    who = rule[0] if rule else {"acknowledge": "owner", "respond": "owner",
                                "close": "iqa"}[step]
    if who == "owner" and actor.id != action.owner_id:
        raise PermissionDenied("Only the action's owner can do that.")
    if who == "iqa" and (actor.id != action.sample.iqa_id or not is_iqa(actor)):
        raise PermissionDenied("Only the internal quality assurer who set the action closes "
                               "it.")
    if rule is None:
        raise InvalidTransition(_REFUSALS[step] + f" This one is {action.status}.")
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
    action.status = rule[1]
    session.flush()
    record_event(session, action=f"iqa.action_{step}", subject_type="iqa_action",
                 subject_id=action.id, actor=actor,
                 actor_role=Role.IQA.value if who == "iqa" else Role.ASSESSOR.value,
                 learner_id=action.sample.enrolment.learner_id,
                 detail={"from": before, "to": action.status})
    return action


def open_actions_for_owner(session: Session, user: User) -> list[IqaAction]:
    return list(session.scalars(select(IqaAction).where(
        IqaAction.owner_id == user.id, IqaAction.status != "closed")
        .order_by(IqaAction.due_on, IqaAction.id)))


def open_actions_for_enrolment(session: Session, enrolment_id: int) -> list[IqaAction]:
    return list(session.scalars(select(IqaAction).where(
        IqaAction.enrolment_id == enrolment_id, IqaAction.status != "closed")
        .order_by(IqaAction.due_on, IqaAction.id)))


# --- dashboard --------------------------------------------------------------------------------

@dataclass
class AssessorSummary:
    rate: AssessorRate
    rate_label: str
    decisions: int
    sampled: int
    disagreements: int

    @property
    def percent(self) -> int:
        return round(100 * self.sampled / self.decisions) if self.decisions else 0


@dataclass
class Dashboard:
    ready: list[SamplingPlanItem]
    unit_ready: list[tuple[Enrolment, Signature]]
    in_progress: list[IqaSample]
    overdue: list[IqaAction]
    open_actions: list[IqaAction]
    assessors: list[AssessorSummary]
    stages: dict[str, int]
    plans: list[SamplingPlan]
    units: list[Unit]


def iqa_units(session: Session, iqa: User) -> list[Unit]:
    """The units of the enrolments this IQA quality-assures."""
    return list(session.scalars(select(Unit).join(Enrolment, Enrolment.unit_id == Unit.id)
                                .where(Enrolment.iqa_id == iqa.id).distinct()
                                .order_by(Unit.reference)))


def dashboard(session: Session, iqa: User, today: date) -> Dashboard:
    plans = list_plans(session, iqa)
    ready = [i for p in plans for i in live_items(p) if i.sample is None
             and i.decision.status == "met"]
    samples = list(session.scalars(select(IqaSample).where(IqaSample.iqa_id == iqa.id)
                                   .order_by(IqaSample.id)))
    in_progress = [s for s in samples if s.status == "in_progress"]
    actions = list(session.scalars(
        select(IqaAction).join(IqaSample, IqaSample.id == IqaAction.sample_id)
        .where(IqaSample.iqa_id == iqa.id, IqaAction.status != "closed")
        .order_by(IqaAction.due_on, IqaAction.id)))
    stages = {"interim": 0, "summative": 0}
    for s in samples:
        stages[s.stage] += 1
    decided = defaultdict(int)
    for assessor_id, count in session.execute(
            select(CriterionDecision.decided_by_id, func.count(CriterionDecision.id))
            .join(Enrolment, Enrolment.id == CriterionDecision.enrolment_id)
            .where(Enrolment.iqa_id == iqa.id,
                   CriterionDecision.status.in_(("met", "reopened")))
            .group_by(CriterionDecision.decided_by_id)):
        decided[assessor_id] = count
    sampled, disagreed = defaultdict(int), defaultdict(int)
    for s in samples:
        if s.decision is not None:  # a unit sample is not one of the decisions counted
            sampled[s.assessor_id] += 1
        disagreed[s.assessor_id] += s.outcome == "disagree"
    units = iqa_units(session, iqa)
    rates = rates_of(current_strategy(session, iqa.centre_id, units[0].id)) if units else \
        dict(DEFAULT_RATES)
    summaries = []
    for assessor_id in sorted(set(decided) | set(sampled) | set(disagreed)):
        assessor = session.get(User, assessor_id)
        rate = assessor_rate(session, assessor)
        summaries.append(AssessorSummary(rate, rate.rate_label(rates), decided[assessor_id],
                                         sampled[assessor_id], disagreed[assessor_id]))
    summaries.sort(key=lambda s: ({"High": 0, "Medium": 1, "Low": 2}[s.rate.risk],
                                  s.rate.assessor.full_name))
    return Dashboard(ready, unit_sampling_ready(session, iqa), in_progress,
                     [a for a in actions if a.due_on < today], actions, summaries, stages,
                     plans, units)


# --- export -----------------------------------------------------------------------------------

def sample_records_for_enrolment(session: Session, enrolment_id: int) -> list[dict[str, Any]]:
    """The portfolio's IQA sample records, oldest first, for the exported PDF.

    Each: ``scope`` ("criterion" or "unit"), ``criterion`` (its number, or "Unit"),
    ``decided_by`` (the assessor sampled), ``iqa``, ``started_at``/``completed_at`` (datetimes
    or None), ``status`` and ``outcome`` (labels), ``rationale_md``, ``snapshot_sha256``,
    ``signature_hash`` (or None) and ``actions`` (description, owner, due_on, status, response).
    """
    records = []
    for sample in session.scalars(select(IqaSample).where(IqaSample.enrolment_id == enrolment_id)
                                  .order_by(IqaSample.id)):
        records.append({
            "id": sample.id,
            "scope": sample.scope,
            "criterion": sample.criterion_label,
            "decided_by": sample.assessor.full_name,
            "iqa": sample.iqa.full_name,
            "started_at": sample.started_at,
            "completed_at": sample.completed_at,
            "status": "Completed" if sample.status == "completed" else "In progress",
            "outcome": OUTCOME_LABELS.get(sample.outcome or "", "Not yet recorded"),
            "rationale_md": sample.rationale_md,
            "snapshot_sha256": sample.snapshot_sha256,
            "signature_hash": sample.signature.content_hash if sample.signature else None,
            "actions": [{"description": a.description, "owner": a.owner.full_name,
                         "due_on": a.due_on, "status": ACTION_STATUS_LABELS[a.status],
                         "response_md": a.response_md or ""} for a in sample.actions],
        })
    return records


def sample_rows_for_export(session: Session, enrolment_id: int) -> list[dict[str, Any]]:
    """The same records shaped for the PDF's "Internal quality assurance" table."""
    return [{
        "sampled_at": f"{r['started_at']:%d %b %Y}",
        "by": r["iqa"],
        "scope": (f"Unit sign-off (signed off by {r['decided_by']})" if r["scope"] == "unit"
                  else f"Criterion {r['criterion']} (decided by {r['decided_by']})"),
        "outcome": r["outcome"] + ("" if r["status"] == "Completed" else " (in progress)"),
        "rationale": r["rationale_md"],
        "actions": [f"{a['description']} ({a['owner']}, due {a['due_on']:%d %b %Y}: "
                    f"{a['status'].lower()})" for a in r["actions"]],
    } for r in sample_records_for_enrolment(session, enrolment_id)]
