"""IQA sampling plan: the strategy's quotas, never the IQA's own work, reproducible, spread out."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio.sampling.plan import (
    STAGES,
    STATUSES,
    UNKNOWN_STATUS_REASON,
    AssessorRisk,
    Candidate,
    Plan,
    Rates,
    generate_plan,
    quota,
    rate_for,
)

IQA = 99
START = date(2024, 1, 1)


def decisions(
    n: int,
    assessor: int,
    *,
    first_id: int = 1,
    employer: str | list[str] = "Acme",
    unit: str = "U40",
    methods: tuple[str, ...] = ("observation",),
    stage: str | list[str] = "summative",
    learner: int | None = None,
    rpl: set[int] | None = None,
    day_step: int = 1,
) -> list[Candidate]:
    """``n`` decisions by one assessor; list arguments cycle, a missing learner means one each."""
    out = []
    for i in range(n):
        cid = first_id + i
        out.append(
            Candidate(
                id=cid,
                assessor_id=assessor,
                learner_id=learner if learner is not None else 1000 + cid,
                employer=employer[i % len(employer)] if isinstance(employer, list) else employer,
                unit=unit,
                methods=methods,
                stage=stage[i % len(stage)] if isinstance(stage, list) else stage,
                decided_on=START + timedelta(days=i * day_step),
                rpl=cid in (rpl or set()),
            )
        )
    return out


def plan_for(candidates, *risks: AssessorRisk, iqa_id=IQA, period_key="2024-Q1", **kw) -> Plan:
    return generate_plan(
        candidates, {r.assessor_id: r for r in risks}, iqa_id=iqa_id, period_key=period_key, **kw
    )


def sampled(plan: Plan, candidates: list[Candidate]) -> list[Candidate]:
    ids = set(plan.candidate_ids)
    return [c for c in candidates if c.id in ids]


# --- the strategy ------------------------------------------------------------------------------


def test_trainee_assessor_every_decision():
    cs = decisions(7, 1, stage=["interim", "summative"])
    plan = plan_for(cs, AssessorRisk(1, "trainee"))
    assert plan.candidate_ids == [c.id for c in cs]
    assert {i.reason for i in plan.items} == {"trainee assessor: 100%"}


def test_newly_qualified_every_summative_and_a_quarter_of_interims():
    cs = decisions(16, 1, stage=["summative", "interim"])
    plan = plan_for(cs, AssessorRisk(1, "newly_qualified"))
    picked = sampled(plan, cs)
    assert {c.id for c in cs if c.stage == "summative"} <= {c.id for c in picked}
    assert sum(c.stage == "interim" for c in picked) == 2  # ceil(25% of 8)
    reasons = {i.reason.split(";")[0] for i in plan.items}
    assert reasons == {
        "newly qualified assessor, summative decision: 100%",
        "newly qualified assessor, interim decision: 25%",
    }


@pytest.mark.parametrize(
    ("status", "n", "expected"),
    [
        ("first_year", 9, 3),  # ceil(2.25)
        ("first_year", 8, 2),
        ("experienced", 20, 2),
        ("experienced", 21, 3),  # ceil(2.1)
        ("experienced", 30, 3),
        ("experienced", 3, 1),  # ceil(0.3): at least one
        ("experienced", 1, 1),
    ],
)
def test_quota_by_status_is_ceil_of_rate(status, n, expected):
    cs = decisions(n, 1)  # one stage only, so no item is added to cover the other
    plan = plan_for(cs, AssessorRisk(1, status))
    assert len(plan.items) == expected
    label = {"first_year": "first-year assessor: 25%", "experienced": "experienced assessor: 10%"}
    assert all(i.reason.startswith(label[status]) for i in plan.items)


@pytest.mark.parametrize(("rate", "n", "expected"), [(0.14, 50, 7), (0.28, 25, 7), (0.56, 75, 42)])
def test_quota_is_not_fooled_by_floating_point(rate, n, expected):
    assert rate * n > expected  # e.g. 0.28 * 25 == 7.000000000000001
    assert quota(rate, n) == expected
    cs = decisions(n, 1)
    assert len(plan_for(cs, AssessorRisk(1, "experienced", override_rate=rate)).items) == expected


def test_quota_bounds():
    assert quota(0.0, 10) == 0
    assert quota(1.0, 10) == 10
    assert quota(0.5, 0) == 0
    assert quota(0.01, 3) == 1


def test_every_assessor_with_decisions_gets_a_sample():
    cs = decisions(2, 1) + decisions(2, 2, first_id=10) + decisions(5, 3, first_id=20)
    plan = plan_for(
        cs,
        AssessorRisk(1, "experienced"),
        AssessorRisk(2, "experienced", override_rate=0.0),  # an IQA lowered it to nothing
        AssessorRisk(3, "experienced"),
    )
    per_assessor = Counter(c.assessor_id for c in sampled(plan, cs))
    assert per_assessor == {1: 1, 2: 1, 3: 1}
    assert plan.coverage.missed["assessors"] == []
    reason_2 = next(i.reason for i in plan.items if i.candidate_id in (10, 11))
    assert reason_2.startswith("at least one sample per assessor")


@pytest.mark.parametrize(
    ("status", "n", "expected", "reason"),
    [
        ("experienced", 10, 5, "experienced assessor, raised after a disagreement: 50%"),
        ("first_year", 10, 5, "first-year assessor, raised after a disagreement: 50%"),
        ("trainee", 10, 10, "trainee assessor: 100%"),  # never lowered by the raise
    ],
)
def test_disagreement_raises_the_rate(status, n, expected, reason):
    cs = decisions(n, 1, stage=["interim", "summative"])
    calm = plan_for(cs, AssessorRisk(1, status))
    raised = plan_for(cs, AssessorRisk(1, status, recent_disagreement=True))
    assert len(raised.items) == expected
    assert len(raised.items) >= len(calm.items)
    assert all(i.reason.startswith(reason) for i in raised.items)


def test_disagreement_rate_comes_from_the_strategy():
    cs = decisions(10, 1, stage=["interim", "summative"])
    plan = plan_for(cs, AssessorRisk(1, "experienced", True), rates=Rates(after_disagreement=0.8))
    assert len(plan.items) == 8


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        (AssessorRisk(1, "experienced", override_rate=0.3), 3),  # raised by an IQA
        (AssessorRisk(1, "trainee", override_rate=0.2), 2),  # lowered by an IQA
        (AssessorRisk(1, "experienced", recent_disagreement=True, override_rate=0.2), 2),
        (AssessorRisk(1, "newly_qualified", override_rate=0.4), 4),
    ],
)
def test_iqa_override_wins(risk, expected):
    cs = decisions(10, 1, stage=["interim", "summative"])
    plan = plan_for(cs, risk)
    assert len(plan.items) == expected
    assert all(i.reason.startswith(f"rate set by IQA: {expected * 10}%") for i in plan.items)


@pytest.mark.parametrize(
    "risk",
    [
        AssessorRisk(1, "experienced"),
        AssessorRisk(1, "experienced", override_rate=0.0),
        AssessorRisk(1, "first_year", recent_disagreement=True),
    ],
)
def test_rpl_claims_always_sampled(risk):
    rpl = {3, 10, 17}  # interim and summative, so no item is added to cover a stage
    cs = decisions(20, 1, stage=["interim", "summative"], rpl=rpl)
    plan = plan_for(cs, risk)
    reasons = {i.candidate_id: i.reason for i in plan.items}
    assert rpl <= set(reasons)
    assert all(reasons[cid] == "RPL claim: 100%" for cid in rpl)
    others = [cid for cid in reasons if cid not in rpl]
    rate, _ = rate_for(risk, cs[0], Rates())
    assert len(others) == quota(rate, 17)


def test_assessor_without_a_risk_profile_is_sampled_in_full():
    cs = decisions(4, 1) + decisions(10, 2, first_id=10, stage=["interim", "summative"])
    plan = plan_for(cs, AssessorRisk(2, "experienced"))
    assert {1, 2, 3, 4} <= set(plan.candidate_ids)
    assert {i.reason for i in plan.items if i.candidate_id < 10} == {UNKNOWN_STATUS_REASON}


def test_rate_for_in_words():
    summative, interim = decisions(2, 1, stage=["summative", "interim"])
    rpl = decisions(1, 1, first_id=5, rpl={5})[0]
    rates = Rates()
    assert rate_for(AssessorRisk(1, "trainee"), interim, rates) == (1.0, "trainee assessor: 100%")
    assert rate_for(AssessorRisk(1, "newly_qualified"), summative, rates) == (
        1.0,
        "newly qualified assessor, summative decision: 100%",
    )
    assert rate_for(AssessorRisk(1, "newly_qualified"), interim, rates) == (
        0.25,
        "newly qualified assessor, interim decision: 25%",
    )
    assert rate_for(AssessorRisk(1, "first_year"), interim, rates) == (
        0.25,
        "first-year assessor: 25%",
    )
    assert rate_for(AssessorRisk(1, "experienced"), interim, rates) == (
        0.1,
        "experienced assessor: 10%",
    )
    assert rate_for(AssessorRisk(1, "experienced", True), interim, rates) == (
        0.5,
        "experienced assessor, raised after a disagreement: 50%",
    )
    assert rate_for(AssessorRisk(1, "trainee", True, 0.15), interim, rates) == (
        0.15,
        "rate set by IQA: 15%",
    )
    assert rate_for(AssessorRisk(1, "experienced"), rpl, rates) == (1.0, "RPL claim: 100%")
    # A strategy with a low RPL rate never lowers an assessor's own rate.
    assert rate_for(AssessorRisk(1, "trainee"), rpl, Rates(rpl=0.5)) == (
        1.0,
        "trainee assessor: 100%",
    )
    with pytest.raises(ValueError, match="assessor 1's, not assessor 2's"):
        rate_for(AssessorRisk(2, "trainee"), interim, rates)


# --- never the IQA's own decisions -------------------------------------------------------------


def test_never_the_iqas_own_decisions_even_when_they_assess_too():
    iqa = 7
    own = decisions(6, iqa, stage=["interim", "summative"])  # the IQA also assesses
    about_iqa = decisions(2, 1, first_id=50, learner=iqa)  # the IQA as a learner
    others = decisions(5, 1, first_id=60, stage=["interim", "summative"])
    cs = own + about_iqa + others
    plan = plan_for(cs, AssessorRisk(iqa, "trainee"), AssessorRisk(1, "trainee"), iqa_id=iqa)
    assert plan.candidate_ids == [c.id for c in others]
    assert iqa not in plan.coverage.assessors
    assert plan.coverage.excluded == 8
    assert plan.coverage.assessors == {1: (5, 5)}


def test_only_the_iqas_own_decisions_gives_an_empty_plan():
    plan = plan_for(decisions(3, 7), AssessorRisk(7, "trainee"), iqa_id=7)
    assert plan.items == []
    assert plan.coverage.assessors == {}
    assert plan.coverage.excluded == 3


def test_no_decisions_gives_an_empty_plan():
    plan = plan_for([], AssessorRisk(1, "trainee"))
    assert plan.items == []
    assert plan.coverage.learners_total == 0


# --- reproducible, and rotating between periods ------------------------------------------------


def _centre() -> tuple[list[Candidate], list[AssessorRisk]]:
    cs = (
        decisions(30, 1, employer=["Acme", "Bolt", "Crane"], stage=["interim", "summative"])
        + decisions(12, 2, first_id=100, employer=["Acme", "Dune"], day_step=9)
        + decisions(25, 3, first_id=200, employer=["Bolt"], stage="interim", day_step=5)
    )
    return cs, [
        AssessorRisk(1, "experienced"),
        AssessorRisk(2, "first_year"),
        AssessorRisk(3, "experienced", recent_disagreement=True),
    ]


def test_same_inputs_same_plan_whatever_the_order():
    cs, risks = _centre()
    first = plan_for(cs, *risks)
    assert plan_for(cs, *risks) == first
    assert plan_for(list(reversed(cs)), *reversed(risks)) == first


def test_different_periods_rotate_the_choice():
    # One experienced assessor, 20 decisions that differ only in learner: any 2 spread equally.
    cs = decisions(20, 1, day_step=0)
    risk = AssessorRisk(1, "experienced")
    plans = {
        tuple(plan_for(cs, risk, period_key=f"2024-{m:02d}").candidate_ids) for m in range(1, 13)
    }
    assert len(plans) >= 6
    assert all(len(p) == 2 for p in plans)
    # A different IQA sampling the same period draws differently too.
    by_iqa = {
        tuple(plan_for(cs, AssessorRisk(1, "experienced"), iqa_id=i).candidate_ids)
        for i in range(100, 112)
    }
    assert len(by_iqa) >= 6


# --- spread ------------------------------------------------------------------------------------


@pytest.mark.parametrize("period_key", [f"2025-Q{q}" for q in range(1, 5)] + ["x", "y", "z"])
def test_two_samples_cover_both_employers(period_key):
    # 18 decisions at Acme, 2 at Bolt: a blind 10% draw would usually miss Bolt.
    employers = ["Acme"] * 9 + ["Bolt"]
    cs = decisions(20, 1, employer=employers, learner=5, day_step=0)
    plan = plan_for(cs, AssessorRisk(1, "experienced"), period_key=period_key)
    assert len(plan.items) == 2
    assert {c.employer for c in sampled(plan, cs)} == {"Acme", "Bolt"}
    assert plan.coverage.missed["employers"] == []
    bolt = next(i for i in plan.items if cs[i.candidate_id - 1].employer == "Bolt")
    assert bolt.reason == "experienced assessor: 10%; covers employer Bolt"


@pytest.mark.parametrize("period_key", ["a", "b", "c", "d"])
def test_samples_spread_across_methods_units_and_learners(period_key):
    cs = []
    for i, (method, unit) in enumerate(
        [("observation", "U40"), ("professional discussion", "U40"), ("work product", "U41")]
    ):
        cs += decisions(10, 1, first_id=1 + i * 10, methods=(method,), unit=unit, learner=i)
    plan = plan_for(cs, AssessorRisk(1, "experienced"), period_key=period_key)  # 3 of 30
    picked = sampled(plan, cs)
    assert len(picked) == 3
    assert {c.methods for c in picked} == {c.methods for c in cs}
    assert {c.unit for c in picked} == {"U40", "U41"}
    assert len({c.learner_id for c in picked}) == 3


@pytest.mark.parametrize("period_key", ["a", "b", "c", "d"])
def test_samples_spread_across_time(period_key):
    # Same learner, employer, unit and method throughout: only the month tells them apart.
    cs = decisions(20, 1, learner=5, day_step=10)  # January to June
    plan = plan_for(cs, AssessorRisk(1, "experienced", override_rate=0.15), period_key=period_key)
    months = [c.decided_on.month for c in sampled(plan, cs)]
    assert len(months) == 3
    assert len(set(months)) == 3


@pytest.mark.parametrize("period_key", ["a", "b", "c", "d"])
def test_each_assessors_sample_spreads_across_time(period_key):
    # A trainee's full sample already touches every month; assessor 2's four still take one
    # decision from each of their four months (a blind draw almost never would).
    trainee = decisions(12, 1, learner=5, day_step=20)  # January to August
    cs = trainee + decisions(40, 2, first_id=100, learner=6, day_step=3)  # January to April
    risks = AssessorRisk(1, "trainee"), AssessorRisk(2, "experienced")
    plan = plan_for(cs, *risks, period_key=period_key)
    months = [c.decided_on.month for c in sampled(plan, cs) if c.assessor_id == 2]
    assert sorted(months) == [1, 2, 3, 4]


def test_interim_and_summative_both_sampled():
    # 19 summative decisions and one interim: the interim is among the two samples.
    cs = decisions(20, 1, stage=["summative"] * 19 + ["interim"], learner=5, day_step=0)
    for period_key in ("p1", "p2", "p3", "p4"):
        plan = plan_for(cs, AssessorRisk(1, "experienced"), period_key=period_key)
        assert len(plan.items) == 2
        assert plan.coverage.interim == 1
        assert plan.coverage.summative == 1


def test_the_stage_is_covered_within_the_quota_before_anything_else():
    # Assessor 1 (trainee) brings only summatives. Assessor 2's one interim adds nothing else new
    # to the plan, while each of their summatives brings a new learner and employer: still the
    # interim takes one of assessor 2's two slots, rather than an extra item being added for it.
    trainee = decisions(3, 1, employer="E0", learner=5)
    cs = trainee + decisions(19, 2, first_id=10, employer=[f"E{i}" for i in range(1, 20)])
    cs.append(Candidate(40, 2, 5, "E0", "U40", ("observation",), "interim", START))
    for period_key in ("p1", "p2", "p3", "p4"):
        plan = plan_for(
            cs, AssessorRisk(1, "trainee"), AssessorRisk(2, "experienced"), period_key=period_key
        )
        assert len(plan.items) == 5
        assert 40 in plan.candidate_ids
        assert (plan.coverage.interim, plan.coverage.summative) == (1, 4)


def test_a_stage_no_quota_reaches_is_added_for_coverage():
    # Interim decisions of a newly qualified assessor at a 0% rate: quotas alone take summatives.
    cs = decisions(6, 1, stage=["summative", "summative", "interim"])
    plan = plan_for(cs, AssessorRisk(1, "newly_qualified"), rates=Rates(first_year=0.0))
    stages = Counter(c.stage for c in sampled(plan, cs))
    assert stages == {"summative": 4, "interim": 1}
    (interim,) = [i for i in plan.items if cs[i.candidate_id - 1].stage == "interim"]
    assert interim.reason.startswith("coverage: interim stage")


def test_a_one_sample_quota_gets_the_other_stage_too():
    cs = decisions(3, 1, stage=["summative", "summative", "interim"], learner=5)
    plan = plan_for(cs, AssessorRisk(1, "experienced"))  # ceil(10% of 3) = 1
    assert (plan.coverage.interim, plan.coverage.summative) == (1, 1)
    reasons = sorted(i.reason.split(";")[0] for i in plan.items)
    assert reasons[0] in ("coverage: interim stage", "coverage: summative stage")
    assert reasons[1] == "experienced assessor: 10%"


# --- the coverage table ------------------------------------------------------------------------


def test_coverage_table_counts_and_misses():
    def c(cid, assessor, learner, employer, unit, methods, stage):
        return Candidate(cid, assessor, learner, employer, unit, methods, stage, START)

    cs = [
        c(1, 1, 10, "A", "U1", ("observation", "discussion"), "summative"),
        c(2, 1, 11, "A", "U2", ("observation",), "interim"),
        # Assessor 2 (rate 0, so one sample): decision 4 adds more that is new, so it is chosen.
        c(3, 2, 12, "B", "U1", ("witness",), "interim"),
        c(4, 2, 13, "C", "U3", ("questioning",), "interim"),
        c(5, IQA, 14, "D", "U9", ("rpl",), "summative"),  # the IQA's own: not counted
    ]
    plan = plan_for(cs, AssessorRisk(1, "trainee"), AssessorRisk(2, "experienced", None, 0.0))
    assert plan.candidate_ids == [1, 2, 4]
    cov = plan.coverage
    assert cov.assessors == {1: (2, 2), 2: (1, 2)}
    assert cov.units == {"U1": (1, 2), "U2": (1, 1), "U3": (1, 1)}
    assert cov.methods == {
        "discussion": (1, 1),
        "observation": (2, 2),
        "questioning": (1, 1),
        "witness": (0, 1),
    }
    assert cov.employers == {"A": (2, 2), "B": (0, 1), "C": (1, 1)}
    assert (cov.learners_touched, cov.learners_total) == (3, 4)
    assert (cov.interim, cov.summative) == (2, 1)
    assert cov.missed == {"assessors": [], "units": [], "methods": ["witness"], "employers": ["B"]}
    assert cov.excluded == 1


def test_coverage_misses_what_a_small_sample_cannot_reach():
    cs = decisions(10, 1, employer=[f"E{i}" for i in range(10)], learner=5)
    plan = plan_for(cs, AssessorRisk(1, "experienced"))
    (picked,) = sampled(plan, cs)
    assert plan.coverage.employers[picked.employer] == (1, 1)
    assert sorted(plan.coverage.missed["employers"]) == sorted(
        f"E{i}" for i in range(10) if f"E{i}" != picked.employer
    )
    assert plan.coverage.assessors == {1: (1, 10)}


# --- bad input says what is wrong --------------------------------------------------------------


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="stage must be"):
        Candidate(1, 1, 1, "A", "U", (), "final", START)
    with pytest.raises(ValueError, match="status must be one of"):
        AssessorRisk(1, "senior")
    with pytest.raises(ValueError, match="override_rate"):
        AssessorRisk(1, "experienced", override_rate=1.5)
    with pytest.raises(ValueError, match="Rates.experienced"):
        Rates(experienced=-0.1)
    with pytest.raises(ValueError, match="listed twice"):
        plan_for(decisions(2, 1) + decisions(1, 1), AssessorRisk(1, "trainee"))
    with pytest.raises(ValueError, match="filed under assessor 2"):
        generate_plan(decisions(1, 1), {2: AssessorRisk(1, "trainee")}, iqa_id=9, period_key="p")


# --- property: any centre ----------------------------------------------------------------------

RATE_VALUES = [0.0, 0.05, 0.1, 0.14, 0.2, 0.25, 0.28, 1 / 3, 0.5, 0.7, 1.0]  # 0.28 * 25 > 7
METHODS = ["observation", "discussion", "witness", "product", "reflection"]


def expected_rate(risk: AssessorRisk | None, c: Candidate, rates: Rates) -> float:
    """The strategy, written out again independently of ``rate_for``."""
    if risk is None:
        rate = 1.0
    elif risk.override_rate is not None:
        rate = risk.override_rate
    elif risk.status == "newly_qualified":
        rate = rates.newly_qualified if c.stage == "summative" else rates.first_year
    else:
        rate = {
            "trainee": rates.trainee,
            "first_year": rates.first_year,
            "experienced": rates.experienced,
        }[risk.status]
    if risk is not None and risk.override_rate is None and risk.recent_disagreement:
        rate = max(rate, rates.after_disagreement)
    if c.rpl:
        rate = max(rate, rates.rpl)
    return rate


def at_least(rate: float, n: int) -> int:
    return math.ceil(round(rate * n, 9))


@st.composite
def centres(draw):
    assessor_ids = draw(st.lists(st.integers(1, 8), min_size=1, max_size=6, unique=True))
    risks = {}
    for a in assessor_ids:
        if draw(st.integers(0, 9)) == 0:
            continue  # no risk profile recorded
        override = draw(st.none() | st.sampled_from(RATE_VALUES))
        risks[a] = AssessorRisk(a, draw(st.sampled_from(STATUSES)), draw(st.booleans()), override)
    n = draw(st.integers(0, 60))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    candidates = [
        Candidate(
            id=cid,
            assessor_id=draw(st.sampled_from(assessor_ids)),
            learner_id=draw(st.integers(1, 15)),
            employer=draw(st.sampled_from("ABCDE")),
            unit=draw(st.sampled_from(["U40", "U41", "U42"])),
            methods=tuple(draw(st.lists(st.sampled_from(METHODS), max_size=3, unique=True))),
            stage=draw(st.sampled_from(STAGES)),
            decided_on=draw(st.dates(date(2023, 9, 1), date(2024, 8, 31))),
            rpl=draw(st.integers(0, 14)) == 0,
        )
        for cid in ids
    ]
    rates = draw(
        st.just(Rates()) | st.builds(Rates, *[st.sampled_from(RATE_VALUES) for _ in range(6)])
    )
    iqa_id = draw(st.integers(1, 10))  # often also an assessor, sometimes a learner
    period_key = draw(st.sampled_from(["2024-Q1", "2024-Q2", "2024-25", ""]))
    shuffled = draw(st.permutations(candidates))
    return candidates, shuffled, risks, rates, iqa_id, period_key


@settings(max_examples=150, deadline=None, database=None)
@given(centres())
def test_property_any_centre(centre):
    candidates, shuffled, risks, rates, iqa_id, period_key = centre
    plan = generate_plan(candidates, risks, iqa_id=iqa_id, period_key=period_key, rates=rates)

    ids = plan.candidate_ids
    by_id = {c.id: c for c in candidates}
    assert len(ids) == len(set(ids)), "an item twice"
    assert set(ids) <= set(by_id), "an item that is not a real decision"
    assert all(by_id[i].assessor_id != iqa_id for i in ids), "the IQA's own decision"
    assert all(by_id[i].learner_id != iqa_id for i in ids), "a decision about the IQA"
    assert all(item.reason for item in plan.items)

    eligible = [c for c in candidates if iqa_id not in (c.assessor_id, c.learner_id)]
    chosen = set(ids)
    upper = 2  # room for the interim/summative coverage items
    by_assessor = defaultdict(list)
    for c in eligible:
        by_assessor[c.assessor_id].append(c)
    for assessor, own in by_assessor.items():
        groups = defaultdict(list)
        finer = defaultdict(list)
        for c in own:
            rate = expected_rate(risks.get(assessor), c, rates)
            groups[rate].append(c)
            finer[rate, c.stage, c.rpl].append(c)
        for rate, members in groups.items():
            got = sum(c.id in chosen for c in members)
            assert got >= at_least(rate, len(members)), (assessor, rate, got, len(members))
        assert any(c.id in chosen for c in own), f"assessor {assessor} not sampled"
        upper += max(1, sum(at_least(r, len(m)) for (r, _, _), m in finer.items()))
    assert len(ids) <= upper, "more sampled than the strategy asks for"

    eligible_stages = {c.stage for c in eligible}
    assert {by_id[i].stage for i in ids} == eligible_stages

    cov = plan.coverage
    assert cov.excluded == len(candidates) - len(eligible)
    assert cov.assessors == {
        a: (sum(c.id in chosen for c in own), len(own)) for a, own in by_assessor.items()
    }
    employers = {c.employer for c in eligible}
    assert cov.employers == {
        e: (
            sum(c.id in chosen for c in eligible if c.employer == e),
            sum(c.employer == e for c in eligible),
        )
        for e in employers
    }
    assert cov.missed["employers"] == sorted(e for e in employers if cov.employers[e][0] == 0)
    assert cov.missed["assessors"] == []
    methods = {m for c in eligible for m in c.methods}
    assert set(cov.methods) == methods
    assert set(cov.missed["methods"]) == {m for m in methods if cov.methods[m][0] == 0}
    assert sum(s for s, _ in cov.units.values()) == len(ids)
    assert cov.learners_total == len({c.learner_id for c in eligible})
    assert cov.learners_touched == len({by_id[i].learner_id for i in ids})
    assert cov.interim + cov.summative == len(ids)

    again = generate_plan(shuffled, dict(risks), iqa_id=iqa_id, period_key=period_key, rates=rates)
    assert again == plan, "not reproducible"
