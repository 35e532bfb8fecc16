"""Coverage: which criteria an enrolment's evidence covers and, for every other, why not yet.

Computed in a fixed number of queries whatever the number of evidence items, mappings or
criteria: the unit's criteria, their accepted methods, the live mappings with their evidence's
current version, and the list of evidence for the matrix.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from markupsafe import Markup
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from portfolio.criteria.unitfile import METHODS
from portfolio.evidence.kinds import KINDS
from portfolio.models import (
    Criterion,
    CriterionDecision,
    CriterionMethod,
    Enrolment,
    Evidence,
    EvidenceMapping,
    EvidenceVersion,
    LearningOutcome,
    Unit,
    User,
)

# Problems that stop an item counting at all, and ones that only wait on the learner or assessor.
HARD_PROBLEMS = ("simulated", "method_not_accepted", "out_of_date")

# What one mapped item means for one criterion: the matrix cell, its legend and the gap list
# all come from here. Only accepted evidence counts; a valid item the learner has yet to submit
# (or must revise), or one waiting for the assessor's review, does not count yet.
CELL_STATES: tuple[tuple[str, str, str], ...] = (
    # (state, symbol, meaning)
    ("counts", "✓", "accepted: counts towards the criterion"),
    ("waiting", "…", "submitted: waiting for the assessor's review, counts once accepted"),
    ("not_yet", "○", "draft or referred back: counts only once submitted and accepted"),
    ("problem", "!", "mapped but can never count as it is (see the reasons above)"),
)
CELL_SYMBOLS = {state: symbol for state, symbol, _ in CELL_STATES}
CELL_MEANINGS = {state: meaning for state, _, meaning in CELL_STATES}
# Each state's matrix cell, escaped once: a matrix of 30 criteria by 200 items is 6,000 cells,
# and drawing them one by one in the template was most of the coverage page's time.
CELL_HTML: dict[str | None, Markup] = {
    None: Markup('<td class="cell cell-none"></td>'),
    **{state: Markup('<td class="cell cell-{}"><span aria-hidden="true">{}</span>'
                     '<span class="visually-hidden">{}</span></td>').format(state, symbol, meaning)
       for state, symbol, meaning in CELL_STATES}}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class MappedItem:
    evidence_id: int
    title: str
    kind: str
    kind_label: str
    method: str
    method_label: str
    status: str
    activity_on: date | None
    rationale: str
    location: str
    problems: tuple[str, ...]

    @property
    def counts(self) -> bool:
        """True when nothing about the item itself stops it counting (method, date, realism);
        see `state` for whether it counts *now*."""
        return not any(p in HARD_PROBLEMS for p in self.problems)

    @property
    def state(self) -> str:
        """One of CELL_STATES: what this item means for the criterion today."""
        if not self.counts:
            return "problem"
        if self.status == "accepted":
            return "counts"
        return "waiting" if self.status == "submitted" else "not_yet"


@dataclass(frozen=True)
class CriterionCoverage:
    criterion_id: int
    number: str
    text: str
    lo_number: int
    required: int
    status: str  # "met", "evidenced", "gap" or "no_evidence"
    counted: int
    items: tuple[MappedItem, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class OutcomeProgress:
    number: int
    title: str
    kind: str
    total: int
    evidenced: int
    met: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.evidenced / self.total) if self.total else 0


@dataclass(frozen=True)
class DecisionState:
    status: str
    decided_by: str
    decided_at: date
    ended_reason: str | None


@dataclass(frozen=True)
class EvidenceColumn:
    evidence_id: int
    title: str
    kind: str
    status: str


@dataclass
class Coverage:
    enrolment_id: int
    today: date
    criteria: list[CriterionCoverage]
    outcomes: list[OutcomeProgress]
    columns: list[EvidenceColumn]
    # (criterion_id, evidence_id) -> a state of CELL_STATES
    cells: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.criteria)

    @property
    def evidenced(self) -> int:
        """Criteria with enough evidence (met ones included)."""
        return sum(1 for c in self.criteria if c.status in ("evidenced", "met"))

    @property
    def met(self) -> int:
        return sum(1 for c in self.criteria if c.status == "met")

    @property
    def percent(self) -> int:
        return round(100 * self.evidenced / self.total) if self.total else 0

    @property
    def gaps(self) -> list[CriterionCoverage]:
        return [c for c in self.criteria if c.status not in ("evidenced", "met")]

    def matrix_row(self, criterion_id: int) -> Markup:
        """One criterion's cells of the matrix, in column order, as HTML."""
        cells = self.cells
        return Markup("").join([CELL_HTML[cells.get((criterion_id, column.evidence_id))]
                                for column in self.columns])

    def next_steps(self, limit: int = 3) -> list[tuple[CriterionCoverage, Reason]]:
        """Return the first few things to do, most basic first."""
        order = {"referred": 0, "decision_invalidated": 0, "reopened": 0, "no_evidence": 1,
                 "method_not_accepted": 2, "simulated": 2, "out_of_date": 3, "too_few": 4,
                 "not_submitted": 5}
        steps = [(c, r) for c in self.gaps for r in c.reasons if r.code in order]
        steps.sort(key=lambda pair: (order[pair[1].code], pair[0].lo_number, pair[0].number))
        return steps[:limit]


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    last_day = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30,
                31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(day.day, last_day))


def _labels(methods: set[str] | list[str]) -> str:
    names = sorted(METHODS.get(m, m).lower() for m in methods)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _item_problems(item_method: str, status: str, activity_on: date | None, accepted: set[str],
                   unit: Unit, oldest_current: date) -> tuple[str, ...]:
    problems = []
    if item_method == "simulation" and not unit.simulation_allowed:
        problems.append("simulated")
    elif item_method not in accepted:
        problems.append("method_not_accepted")
    if activity_on is not None and activity_on < oldest_current:
        problems.append("out_of_date")
    if status == "draft":
        problems.append("not_submitted")
    elif status == "referred":
        problems.append("referred")
    return tuple(problems)


def _reasons(items: list[MappedItem], required: int, accepted: set[str], preferred: set[str],
             unit: Unit, oldest_current: date) -> tuple[str, int, tuple[Reason, ...]]:
    if not items:
        suggestion = _labels(preferred or accepted)
        return "no_evidence", 0, (Reason("no_evidence", "No evidence is mapped to this criterion "
                                                        f"yet. Suits: {suggestion}."),)
    valid = [i for i in items if i.counts]
    ready = [i for i in valid if i.status in ("submitted", "accepted")]
    if len(ready) >= required:
        unreviewed = [i for i in ready if i.status != "accepted"][:required]
        if len(ready) - len(unreviewed) >= required or not unreviewed:
            message = "Evidenced: waiting for the assessor's decision."
        else:
            message = ("Evidenced, not counting yet: the assessor has still to review "
                       + ", ".join(f"“{i.title}”" for i in unreviewed) + ".")
        waiting = Reason("awaiting_assessor", message)
        return "evidenced", len(ready), (waiting,)
    reasons: list[Reason] = []
    if not valid:
        if any("simulated" in i.problems for i in items):
            reasons.append(Reason("simulated", "Evidence marked as simulated does not count: "
                                               "this unit must be shown in real work."))
        wrong = {i.method for i in items if "method_not_accepted" in i.problems}
        if wrong:
            reasons.append(Reason(
                "method_not_accepted",
                f"Only {_labels(wrong)} evidence is mapped, which this criterion does not accept."
                f" It needs {_labels(preferred or accepted)}."))
        old = [i for i in items if "out_of_date" in i.problems]
        if old:
            oldest = min(i.activity_on for i in old if i.activity_on)
            reasons.append(Reason(
                "out_of_date",
                f"Evidence from {oldest:%d %b %Y} is older than this unit's "
                f"{unit.currency_months}-month currency window "
                f"(before {oldest_current:%d %b %Y})."))
    elif len(valid) < required:
        reasons.append(Reason("too_few", f"Needs {required} occurrences; {len(valid)} so far."))
    for item in valid:
        if item.status == "draft":
            reasons.append(Reason("not_submitted",
                                  f"“{item.title}” is still a draft: submit it for assessment."))
        elif item.status == "referred":
            reasons.append(Reason("referred", f"“{item.title}” was referred back: revise it."))
    if valid and len(valid) >= required and not reasons:
        reasons.append(Reason("not_submitted", "Submit the mapped evidence for assessment."))
    return "gap", len(ready), tuple(reasons)


def _with_decision(status: str, reasons: tuple[Reason, ...],
                   decision: DecisionState | None) -> tuple[str, tuple[Reason, ...]]:
    if decision is None:
        return status, reasons
    when = f"{decision.decided_at:%d %b %Y}"
    if decision.status == "met":
        return "met", (Reason("met", f"Met: signed by {decision.decided_by} on {when}."),)
    if decision.status == "awaiting_countersignature":
        return "evidenced", (Reason(
            "awaiting_countersignature",
            f"Decided met by {decision.decided_by} (trainee assessor) on {when}; waiting for a "
            "qualified assessor's countersignature before it counts."),)
    code = "decision_invalidated" if decision.status == "invalidated" else "reopened"
    why = decision.ended_reason or "the decision no longer stands"
    return status, (Reason(code, f"The assessor's decision of {when} no longer stands: {why}. "
                                 "It needs deciding again."), *reasons)


def compute_coverage(session: Session, enrolment: Enrolment, today: date) -> Coverage:
    """Return the coverage of one enrolment's unit by its evidence."""
    unit = enrolment.unit
    oldest_current = _months_before(today, unit.currency_months)
    criteria_rows = session.execute(
        select(Criterion.id, Criterion.number, Criterion.text, Criterion.required_occurrences,
               LearningOutcome.number, LearningOutcome.title, LearningOutcome.kind)
        .join(LearningOutcome, LearningOutcome.id == Criterion.learning_outcome_id)
        .where(Criterion.unit_id == unit.id, Criterion.is_retired.is_(False))
        .order_by(LearningOutcome.number, Criterion.position)
    ).all()
    accepted: dict[int, set[str]] = defaultdict(set)
    preferred: dict[int, set[str]] = defaultdict(set)
    for criterion_id, method, is_preferred in session.execute(
        select(CriterionMethod.criterion_id, CriterionMethod.method, CriterionMethod.preferred)
        .join(Criterion, Criterion.id == CriterionMethod.criterion_id)
        .where(Criterion.unit_id == unit.id)
    ):
        accepted[criterion_id].add(method)
        if is_preferred:
            preferred[criterion_id].add(method)

    current = and_(EvidenceVersion.evidence_id == Evidence.id,
                   EvidenceVersion.version == Evidence.current_version)
    mapping_rows = session.execute(
        select(EvidenceMapping.criterion_id, EvidenceMapping.rationale, EvidenceMapping.location,
               Evidence.id, Evidence.kind, Evidence.status, EvidenceVersion.title,
               EvidenceVersion.activity_on, EvidenceVersion.details,
               EvidenceVersion.is_simulated, EvidenceMapping.source,
               Evidence.assessor_mapped_at)
        .join(Evidence, Evidence.id == EvidenceMapping.evidence_id)
        .join(EvidenceVersion, current)
        .where(Evidence.enrolment_id == enrolment.id, EvidenceMapping.removed_at.is_(None),
               Evidence.status != "withdrawn")
        .order_by(EvidenceVersion.activity_on, Evidence.id)
    ).all()
    column_rows = session.execute(
        select(Evidence.id, EvidenceVersion.title, Evidence.kind, Evidence.status)
        .join(EvidenceVersion, current)
        .where(Evidence.enrolment_id == enrolment.id, Evidence.status != "withdrawn")
        .order_by(Evidence.id)
    ).all()

    decisions: dict[int, DecisionState] = {}
    for row in session.execute(
        select(CriterionDecision.criterion_id, CriterionDecision.status,
               CriterionDecision.decided_at, CriterionDecision.ended_reason, User.full_name)
        .join(User, User.id == CriterionDecision.decided_by_id)
        .where(CriterionDecision.enrolment_id == enrolment.id)
        .order_by(CriterionDecision.id)
    ):
        # The newest decision per criterion wins: a live one, or why the last one ended.
        decisions[row.criterion_id] = DecisionState(row.status, row.full_name,
                                                    row.decided_at.date(), row.ended_reason)

    by_criterion: dict[int, list[MappedItem]] = defaultdict(list)
    cells: dict[tuple[int, int], str] = {}
    for row in mapping_rows:
        # Once the assessor has confirmed or corrected an item's mapping, theirs is final.
        final = "assessor" if row.assessor_mapped_at is not None else "learner"
        if row.source != final:
            continue
        kind = KINDS[row.kind]
        method = kind.method_for(row.details or {}, row.is_simulated)
        problems = _item_problems(method, row.status, row.activity_on,
                                  accepted[row.criterion_id], unit, oldest_current)
        item = MappedItem(row.id, row.title, row.kind, kind.label, method,
                          METHODS.get(method, method), row.status, row.activity_on,
                          row.rationale, row.location, problems)
        by_criterion[row.criterion_id].append(item)
        cells[(row.criterion_id, row.id)] = item.state

    criteria: list[CriterionCoverage] = []
    outcome_totals: dict[int, list] = {}
    for cid, number, text, required, lo_number, lo_title, lo_kind in criteria_rows:
        items = by_criterion.get(cid, [])
        status, counted, reasons = _reasons(items, required, accepted[cid], preferred[cid], unit,
                                            oldest_current)
        status, reasons = _with_decision(status, reasons, decisions.get(cid))
        criteria.append(CriterionCoverage(cid, number, text, lo_number, required, status,
                                          counted, tuple(items), reasons))
        totals = outcome_totals.setdefault(lo_number, [lo_title, lo_kind, 0, 0, 0])
        totals[2] += 1
        totals[3] += status in ("evidenced", "met")
        totals[4] += status == "met"
    outcomes = [OutcomeProgress(n, t[0], t[1], t[2], t[3], t[4])
                for n, t in outcome_totals.items()]
    columns = [EvidenceColumn(r.id, r.title, r.kind, r.status) for r in column_rows]
    return Coverage(enrolment.id, today, criteria, outcomes, columns, cells)
