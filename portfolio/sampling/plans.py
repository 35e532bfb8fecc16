"""Sampling plans: the decisions an IQA may sample, a reproducible plan, and hand-made changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portfolio.assessment.signing import (
    sha256_of,
)
from portfolio.audit import record_event
from portfolio.criteria.unitfile import METHODS
from portfolio.db import utcnow
from portfolio.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from portfolio.evidence.kinds import KINDS
from portfolio.models import (
    CriterionDecision,
    Enrolment,
    Evidence,
    EvidenceVersion,
    Role,
    SamplingPlan,
    SamplingPlanItem,
    Signature,
    Unit,
    User,
)
from portfolio.permissions import is_independent_iqa
from portfolio.sampling import plan as planner
from portfolio.sampling.profiles import risks_for
from portfolio.sampling.strategy import current_strategy, is_iqa, planner_rates, rates_of


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
