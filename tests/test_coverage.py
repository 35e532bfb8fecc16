"""Coverage: the reason for every gap, progress, and a fixed number of queries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event

from portfolio.evidence.coverage import compute_coverage
from portfolio.models import Criterion
from tests.factories import make_centre, make_enrolment, make_evidence, make_user

TODAY = date.today()
LONG_AGO = TODAY - timedelta(days=365 * 3)


@pytest.fixture
def portfolio(session):
    centre = make_centre(session)
    learner = make_user(session, centre, "learner")
    assessor = make_user(session, centre, "assessor")
    enrolment = make_enrolment(session, learner, assessor)
    session.commit()
    return enrolment, learner, assessor


def _coverage(session, enrolment):
    session.expire_all()
    return {c.number: c for c in compute_coverage(session, enrolment, TODAY).criteria}


# (what the learner did, criterion, expected status, expected reason codes)
SITUATIONS = [
    ("nothing mapped", [], "1.1", "no_evidence", {"no_evidence"}),
    ("reflective account, submitted, for a knowledge criterion",
     [dict(kind="reflective_account", maps=("1.1",), submit=True)], "1.1", "evidenced",
     {"awaiting_assessor"}),
    ("reflective account only, for a performance criterion",
     [dict(kind="reflective_account", maps=("2.3",), submit=True)], "2.3", "gap",
     {"method_not_accepted"}),
    ("observation marked as simulated",
     [dict(kind="observation", by="assessor", maps=("2.1",), simulated=True, submit=True)],
     "2.1", "gap", {"simulated"}),
    ("evidence older than the currency window",
     [dict(kind="reflective_account", maps=("1.2",), activity_on=LONG_AGO, submit=True)],
     "1.2", "gap", {"out_of_date"}),
    ("a draft not yet submitted",
     [dict(kind="reflective_account", maps=("1.4",))], "1.4", "gap", {"not_submitted"}),
    ("witness testimony for 2.9, submitted",
     [dict(kind="witness_testimony", maps=("2.9",), submit=True,
           details={"witness_name": "Jo Bloggs", "witness_role": "Team leader",
                    "relationship": "Line manager", "witness_contact": "jo@work.example"})],
     "2.9", "evidenced", {"awaiting_assessor"}),
    ("withdrawn evidence no longer counts",
     [dict(kind="reflective_account", maps=("1.5",), withdraw=True)], "1.5", "no_evidence",
     {"no_evidence"}),
    ("one valid and one wrong-method item still counts once",
     [dict(kind="reflective_account", maps=("2.6",), submit=True),
      dict(kind="observation", by="assessor", maps=("2.6",), submit=True)], "2.6",
     "evidenced", {"awaiting_assessor"}),
]


@pytest.mark.parametrize(("situation", "items", "number", "status", "codes"), SITUATIONS,
                         ids=[s[0] for s in SITUATIONS])
def test_gap_reasons(session, portfolio, situation, items, number, status, codes):
    enrolment, learner, assessor = portfolio
    from portfolio.evidence.services import withdraw_evidence

    for spec in items:
        spec = dict(spec)
        actor = assessor if spec.pop("by", "learner") == "assessor" else learner
        withdraw = spec.pop("withdraw", False)
        body = "What happened and what I did."
        evidence = make_evidence(session, enrolment, actor, body=body, **spec)
        if withdraw:
            withdraw_evidence(session, evidence, actor=actor, reason="wrong unit")
    session.commit()
    entry = _coverage(session, enrolment)[number]
    assert entry.status == status
    assert {r.code for r in entry.reasons} == codes
    assert all(r.message for r in entry.reasons)


def test_more_occurrences_required(session, portfolio):
    enrolment, learner, _assessor = portfolio
    criterion = session.query(Criterion).filter_by(number="1.6").one()
    criterion.required_occurrences = 2
    make_evidence(session, enrolment, learner, maps=("1.6",), submit=True)
    session.commit()
    entry = _coverage(session, enrolment)["1.6"]
    assert entry.status == "gap" and [r.code for r in entry.reasons] == ["too_few"]
    assert "Needs 2 occurrences; 1 so far" in entry.reasons[0].message
    make_evidence(session, enrolment, learner, title="Second", maps=("1.6",), submit=True)
    session.commit()
    assert _coverage(session, enrolment)["1.6"].status == "evidenced"


def test_method_message_names_what_is_needed(session, portfolio):
    enrolment, learner, _assessor = portfolio
    make_evidence(session, enrolment, learner, maps=("2.8",), submit=True)
    session.commit()
    message = _coverage(session, enrolment)["2.8"].reasons[0].message
    assert "reflective account" in message and "work products" in message


def test_progress_per_outcome_and_unit(session, portfolio):
    enrolment, learner, _assessor = portfolio
    make_evidence(session, enrolment, learner, maps=("1.1", "1.2", "1.3"), submit=True)
    session.commit()
    coverage = compute_coverage(session, enrolment, TODAY)
    assert (coverage.evidenced, coverage.total) == (3, 17)
    assert [(o.number, o.evidenced, o.total) for o in coverage.outcomes] == [(1, 3, 8), (2, 0, 9)]
    assert coverage.next_steps()[0][1].code == "no_evidence"


def _count_queries(session, enrolment) -> int:
    engine = session.get_bind()
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        session.expire_all()
        compute_coverage(session, enrolment, TODAY)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_coverage_uses_a_fixed_number_of_queries(session, portfolio):
    enrolment, learner, assessor = portfolio
    assert enrolment.unit is not None  # loaded once, as the views do
    baseline = _count_queries(session, enrolment)
    for n in range(30):
        make_evidence(session, enrolment, learner, title=f"Item {n}",
                      maps=("1.1", "1.2", "2.1", "2.3")[: 1 + n % 4])
    make_evidence(session, enrolment, assessor, "observation", maps=("2.1", "2.3", "2.6"))
    session.commit()
    assert enrolment.unit is not None
    assert _count_queries(session, enrolment) == baseline


def test_the_matrix_shows_each_cell_in_its_column(app, session):
    """The matrix's cells are drawn in Python (one string per criterion): each cell is in the
    column of its item and says what the item means for the criterion, in words too."""
    import re

    from tests.conftest import Browserless
    from tests.factories import PASSWORD, accept, make_world

    world = make_world(session)
    accepted = make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    accept(session, accepted, world.assessor)
    draft = make_evidence(session, world.enrolment, world.learner, maps=("1.1", "1.2"))
    session.commit()
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    page = web.client.get(f"/enrolments/{world.enrolment.id}/coverage").get_data(True)
    head = page.split('<table class="matrix">', 1)[1].split("</thead>", 1)[0]
    columns = [int(n) for n in re.findall(r'href="/evidence/(\d+)"', head)]
    assert set(columns) == {accepted.id, draft.id}

    def row(number: str) -> list[str]:
        found = re.search(rf">{re.escape(number)}</a></th>(.*?)<td><span class=\"tag", page,
                          re.S)
        assert found, number
        return re.findall(r'<td class="cell cell-([a-z_]+)">', found.group(1))

    expected_11 = {accepted.id: "counts", draft.id: "not_yet"}
    assert row("1.1") == [expected_11[c] for c in columns]
    assert row("1.2") == ["not_yet" if c == draft.id else "none" for c in columns]
    assert row("1.3") == ["none", "none"]
    assert "accepted: counts towards the criterion" in page
