"""IQA sampling plan: which assessment decisions an internal quality assurer samples, and why.

A sampling *strategy* (:class:`Rates`) sets how much of each assessor's work is sampled by risk:
every decision of a trainee assessor, every summative decision of a newly qualified assessor, a
quarter of a first-year assessor's decisions, a tenth of an experienced assessor's, more after a
"disagree" outcome, and every RPL claim. An IQA may lower or raise one assessor's rate
(:attr:`AssessorRisk.override_rate`).

A *plan* (:func:`generate_plan`) meets those quotas and chooses which decisions fill them so the
sample spreads across employers (venues), learners, units, assessment methods, interim and
summative stages, and time. The choice is reproducible: the same inputs always give the same plan,
and a different sampling period rotates the choice where there is one. An IQA never samples their
own assessment decisions, nor decisions about themselves as a learner.

Pure Python, no database: the caller loads the decisions and risk profiles and stores the plan.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

STATUSES: tuple[str, ...] = ("trainee", "newly_qualified", "first_year", "experienced")
STAGES: tuple[str, ...] = ("interim", "summative")

_STATUS_LABELS = {
    "trainee": "trainee assessor",
    "first_year": "first-year assessor",
    "experienced": "experienced assessor",
}
# A decision whose assessor has no recorded risk profile is sampled in full: the safe default.
UNKNOWN_STATUS_REASON = "assessor status not recorded: 100%"
# Floating-point slack so that e.g. 10% of 30 decisions is 3 samples, not 4.
_EPSILON = 1e-9


def _check_rate(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction between 0 and 1 (got {value!r})")


def _pct(rate: float) -> str:
    return f"{rate * 100:.4g}%"


def quota(rate: float, n: int) -> int:
    """How many of ``n`` decisions a rate asks for: ``ceil(rate * n)``, at most ``n``."""
    if n <= 0:
        return 0
    return min(n, max(0, math.ceil(rate * n - _EPSILON)))


@dataclass(frozen=True)
class Rates:
    """The centre's sampling strategy: fractions (0-1) of decisions to sample, by risk."""

    trainee: float = 1.0  # every decision of a trainee assessor
    newly_qualified: float = 1.0  # every summative decision of a newly qualified assessor
    first_year: float = 0.25  # assessor in their first year (and a newly qualified one's interims)
    experienced: float = 0.10  # experienced, no recent disagreements
    after_disagreement: float = 0.5  # raised after a "disagree" outcome, until an IQA lowers it
    rpl: float = 1.0  # every recognition-of-prior-learning claim

    def __post_init__(self) -> None:
        for name in (
            "trainee",
            "newly_qualified",
            "first_year",
            "experienced",
            "after_disagreement",
            "rpl",
        ):
            _check_rate(f"Rates.{name}", getattr(self, name))


@dataclass(frozen=True)
class AssessorRisk:
    """One assessor's risk profile as the sampling strategy sees it."""

    assessor_id: int
    status: str  # one of STATUSES
    recent_disagreement: bool = False
    override_rate: float | None = None  # set by an IQA; wins over status and disagreement

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"assessor {self.assessor_id}: status must be one of {', '.join(STATUSES)} "
                f"(got {self.status!r})"
            )
        if self.override_rate is not None:
            _check_rate(f"assessor {self.assessor_id}: override_rate", self.override_rate)


@dataclass(frozen=True)
class Candidate:
    """One sampleable assessment decision."""

    id: int
    assessor_id: int
    learner_id: int
    employer: str
    unit: str
    methods: tuple[str, ...]
    stage: str  # "interim" | "summative"
    decided_on: date
    rpl: bool = False
    countersigned_by_id: int | None = None  # who countersigned a trainee's decision, if anyone

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(
                f"decision {self.id}: stage must be 'interim' or 'summative' (got {self.stage!r})"
            )


@dataclass(frozen=True)
class PlanItem:
    """One sampled decision and why it is in the plan."""

    candidate_id: int
    reason: str


@dataclass
class Coverage:
    """What the plan touches and what it misses, over the decisions this IQA may sample."""

    assessors: dict[int, tuple[int, int]]  # assessor -> (sampled, total)
    units: dict[str, tuple[int, int]]
    methods: dict[str, tuple[int, int]]
    employers: dict[str, tuple[int, int]]
    learners_touched: int
    learners_total: int
    interim: int  # sampled interim decisions
    summative: int  # sampled summative decisions
    missed: dict[str, list[str]]  # "assessors"/"units"/"methods"/"employers" -> none sampled
    excluded: int = 0  # decisions left out because they are the IQA's own (or about the IQA)


@dataclass
class Plan:
    items: list[PlanItem]
    coverage: Coverage

    @property
    def candidate_ids(self) -> list[int]:
        return [item.candidate_id for item in self.items]


def rate_for(risk: AssessorRisk, candidate: Candidate, rates: Rates = Rates()) -> tuple[float, str]:
    """The fraction of decisions like ``candidate`` to sample, and the reason in words."""
    if risk.assessor_id != candidate.assessor_id:
        raise ValueError(
            f"decision {candidate.id} is assessor {candidate.assessor_id}'s, "
            f"not assessor {risk.assessor_id}'s"
        )
    if risk.override_rate is not None:
        rate = risk.override_rate
        reason = f"rate set by IQA: {_pct(rate)}"
    else:
        if risk.status == "newly_qualified":
            if candidate.stage == "summative":
                rate, label = rates.newly_qualified, "newly qualified assessor, summative decision"
            else:
                rate, label = rates.first_year, "newly qualified assessor, interim decision"
        else:
            rate, label = getattr(rates, risk.status), _STATUS_LABELS[risk.status]
        if risk.recent_disagreement and rates.after_disagreement > rate:
            rate, label = rates.after_disagreement, f"{label}, raised after a disagreement"
        reason = f"{label}: {_pct(rate)}"
    if candidate.rpl and rates.rpl >= rate:
        return rates.rpl, f"RPL claim: {_pct(rates.rpl)}"
    return rate, reason


def _rate(risk: AssessorRisk | None, candidate: Candidate, rates: Rates) -> tuple[float, str]:
    if risk is None:
        return 1.0, UNKNOWN_STATUS_REASON
    return rate_for(risk, candidate, rates)


def _month(day: date) -> tuple[int, int]:
    return day.year, day.month


@dataclass
class _Pool:
    """Decisions of one assessor that share a rate, and how many of them are still to pick."""

    reason: str
    remaining: int


@dataclass
class _Spread:
    """What the plan covers so far, centre-wide and per assessor."""

    employers: set[str] = field(default_factory=set)
    learners: set[int] = field(default_factory=set)
    units: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    stages: set[str] = field(default_factory=set)
    months: set[tuple[int, int]] = field(default_factory=set)

    def new_dimensions(self, c: Candidate) -> list[str]:
        """The things ``c`` would add, in words (stage and month not included)."""
        new = []
        if c.employer not in self.employers:
            new.append(f"employer {c.employer}")
        if c.learner_id not in self.learners:
            new.append(f"learner {c.learner_id}")
        if c.unit not in self.units:
            new.append(f"unit {c.unit}")
        fresh = [m for m in dict.fromkeys(c.methods) if m not in self.methods]
        if fresh:
            new.append("method " + ", ".join(fresh))
        return new

    def novelty(self, c: Candidate) -> int:
        return (
            (c.employer not in self.employers)
            + (c.learner_id not in self.learners)
            + (c.unit not in self.units)
            + any(m not in self.methods for m in c.methods)
        )

    def add(self, c: Candidate) -> None:
        self.employers.add(c.employer)
        self.learners.add(c.learner_id)
        self.units.add(c.unit)
        self.methods.update(c.methods)
        self.stages.add(c.stage)
        self.months.add(_month(c.decided_on))


class _Chooser:
    """Greedy spreading: the next pick is the decision that adds most that is not yet covered."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.centre = _Spread()
        self.per_assessor: dict[int, _Spread] = defaultdict(_Spread)

    def tie(self, c: Candidate) -> bytes:
        # Per-decision pseudo-random rank: stable when other decisions come and go.
        return hashlib.sha256(self.seed + str(c.id).encode()).digest()

    def score(self, c: Candidate) -> tuple[int, ...]:
        """Larger is better. Every part can only fall as the plan grows (lazy greedy needs it)."""
        mine = self.per_assessor[c.assessor_id]
        centre_new = self.centre.novelty(c)
        mine_new = mine.novelty(c) + (c.stage not in mine.stages)
        month = _month(c.decided_on)
        return (
            int(c.stage not in self.centre.stages),  # at least one interim and one summative
            centre_new + mine_new,  # employers, learners, units, methods: centre-wide and own
            centre_new,
            int(month not in mine.months),  # spread each assessor's sample across time
            int(month not in self.centre.months),
        )

    def key(self, c: Candidate) -> tuple[tuple[int, ...], bytes, int]:
        return tuple(-s for s in self.score(c)), self.tie(c), c.id

    def add(self, c: Candidate) -> str:
        """Record ``c`` as picked; return what it newly brings to the plan, in words."""
        new = self.centre.new_dimensions(c)
        self.centre.add(c)
        self.per_assessor[c.assessor_id].add(c)
        return ", ".join(new)


def _with_spread(reason: str, adds: str) -> str:
    return f"{reason}; covers {adds}" if adds else reason


def independent_of(c: Candidate, iqa_id: int) -> bool:
    """True when the IQA neither made nor countersigned the decision, nor is its learner."""
    return iqa_id not in (c.assessor_id, c.learner_id, c.countersigned_by_id)


def generate_plan(
    candidates: Sequence[Candidate],
    risks: Mapping[int, AssessorRisk],
    *,
    iqa_id: int,
    period_key: str,
    rates: Rates = Rates(),
) -> Plan:
    """A reproducible, risk-based, spread-out sampling plan for one IQA and one period.

    ``risks`` maps assessor id to risk profile; an assessor without one is sampled in full.
    Items come in decision-id order.
    """
    seen: set[int] = set()
    for c in candidates:
        if c.id in seen:
            raise ValueError(f"decision {c.id} is listed twice")
        seen.add(c.id)
    for assessor_id, risk in risks.items():
        if risk.assessor_id != assessor_id:
            raise ValueError(
                f"risk profile filed under assessor {assessor_id} is assessor {risk.assessor_id}'s"
            )

    eligible = sorted(
        (c for c in candidates if independent_of(c, iqa_id)),
        key=lambda c: c.id,
    )
    by_id = {c.id: c for c in eligible}
    chooser = _Chooser(hashlib.sha256(f"{period_key}\x1f{iqa_id}".encode()).digest())

    by_assessor: dict[int, list[Candidate]] = defaultdict(list)
    for c in eligible:
        by_assessor[c.assessor_id].append(c)

    chosen: dict[int, str] = {}
    mandatory: list[tuple[Candidate, str]] = []
    pool_of: dict[int, _Pool] = {}
    for assessor_id, own in by_assessor.items():
        groups: dict[tuple[float, str], list[Candidate]] = defaultdict(list)
        for c in own:
            groups[_rate(risks.get(assessor_id), c, rates)].append(c)
        asked = 0
        for (rate, reason), members in sorted(groups.items()):
            wanted = quota(rate, len(members))
            asked += wanted
            if wanted >= len(members):
                mandatory.extend((c, reason) for c in members)
            elif wanted:
                pool = _Pool(reason, wanted)
                pool_of.update((c.id, pool) for c in members)
        if asked == 0:  # every rate was 0: still one sample per assessor
            first_reason = min(groups)[1]
            pool = _Pool(f"at least one sample per assessor ({first_reason})", 1)
            pool_of.update((c.id, pool) for c in own)

    for c, reason in mandatory:  # in by rule, not by choice: no "covers" note
        chooser.add(c)
        chosen[c.id] = reason

    # Lazy greedy: scores only fall as the plan grows, so a stored key is an optimistic bound;
    # a popped entry whose fresh key still beats the best stored key is the true best pick.
    heap = [chooser.key(by_id[cid]) for cid in pool_of]
    heapq.heapify(heap)
    while heap:
        _, _, cid = heapq.heappop(heap)
        pool = pool_of[cid]
        if pool.remaining == 0:
            continue
        while heap and pool_of[heap[0][2]].remaining == 0:
            heapq.heappop(heap)
        fresh = chooser.key(by_id[cid])
        if heap and fresh > heap[0]:
            heapq.heappush(heap, fresh)
            continue
        pool.remaining -= 1
        chosen[cid] = _with_spread(pool.reason, chooser.add(by_id[cid]))

    # Quotas alone may leave a stage out (e.g. only mandatory summatives): add one of it.
    for stage in STAGES:
        if stage in chooser.centre.stages:
            continue
        spare = [c for c in eligible if c.stage == stage and c.id not in chosen]
        if spare:
            best = min(spare, key=chooser.key)
            chosen[best.id] = _with_spread(f"coverage: {stage} stage", chooser.add(best))

    items = [PlanItem(cid, chosen[cid]) for cid in sorted(chosen)]
    return Plan(items, _coverage(eligible, chosen, excluded=len(candidates) - len(eligible)))


def _coverage(eligible: list[Candidate], chosen: Mapping[int, str], *, excluded: int) -> Coverage:
    assessors: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    units: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    methods: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    employers: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    learners: set[int] = set()
    touched: set[int] = set()
    stages = {stage: 0 for stage in STAGES}
    for c in eligible:
        sampled = int(c.id in chosen)
        counters = [assessors[c.assessor_id], units[c.unit], employers[c.employer]]
        counters += [methods[m] for m in dict.fromkeys(c.methods)]
        for counter in counters:
            counter[0] += sampled
            counter[1] += 1
        learners.add(c.learner_id)
        if sampled:
            touched.add(c.learner_id)
            stages[c.stage] += 1

    def table(counts: Mapping[Any, list[int]]) -> dict[Any, tuple[int, int]]:
        return {k: (v[0], v[1]) for k, v in sorted(counts.items())}

    def none_sampled(counts: Mapping[Any, list[int]]) -> list[str]:
        return [str(k) for k, v in sorted(counts.items()) if v[0] == 0]

    return Coverage(
        assessors=table(assessors),
        units=table(units),
        methods=table(methods),
        employers=table(employers),
        learners_touched=len(touched),
        learners_total=len(learners),
        interim=stages["interim"],
        summative=stages["summative"],
        missed={
            "assessors": none_sampled(assessors),
            "units": none_sampled(units),
            "methods": none_sampled(methods),
            "employers": none_sampled(employers),
        },
        excluded=excluded,
    )


def coverage_of(
    candidates: Sequence[Candidate], chosen_ids: Sequence[int], *, iqa_id: int
) -> Coverage:
    """The coverage table of a plan edited by hand: ``chosen_ids`` out of ``candidates``."""
    eligible = sorted(
        (c for c in candidates if independent_of(c, iqa_id)),
        key=lambda c: c.id,
    )
    chosen = {cid: "" for cid in chosen_ids}
    return _coverage(eligible, chosen, excluded=len(candidates) - len(eligible))
