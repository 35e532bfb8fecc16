"""The IQA dashboard costs the same number of SQL statements whatever the number of the IQA's
enrolments and signed-off units (issue 16: it ran one lookup, and a signature verification, per
enrolment)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import event

from portfolio.sampling import services as sampling
from tests.factories import make_centre, make_enrolment, make_user
from tests.sampling_setup import sign_off_whole_unit


def _statements(session, iqa) -> tuple[int, int]:
    engine = session.get_bind()
    seen: list[int] = []

    def count(*_args) -> None:
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        session.expire_all()
        board = sampling.dashboard(session, iqa, date.today())
        for enrolment, signoff in board.unit_ready:  # what the page reads
            _ = (enrolment.learner.full_name, enrolment.unit.number, signoff.signed_at)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen), len(board.unit_ready)


def _signed_off(session, centre, assessor, iqa, n: int) -> None:
    for _ in range(n):
        learner = make_user(session, centre, "learner")
        enrolment = make_enrolment(session, learner, assessor, iqa)
        sign_off_whole_unit(session, enrolment, learner, assessor, cosign=False)
    session.commit()


def test_fixed_statements_whatever_the_signed_off_units(app, session):
    centre = make_centre(session)
    assessor = make_user(session, centre, "assessor", assessor_status="qualified")
    iqa = make_user(session, centre, "iqa")
    _signed_off(session, centre, assessor, iqa, 1)
    small, listed = _statements(session, iqa)
    assert listed == 1
    _signed_off(session, centre, assessor, iqa, 4)
    large, listed = _statements(session, iqa)
    assert listed == 5
    # It was about 118 statements more per signed-off unit.
    print(f"IQA dashboard statements: {small} with 1 signed-off unit, {large} with 5")
    assert large == small, (small, large)
