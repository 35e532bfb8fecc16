"""The hash-chained audit trail detects edited, deleted and reordered events."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from portfolio.audit import GENESIS_HASH, chain_head, record_event, verify_chain
from portfolio.cli import cli
from tests.factories import bypass_audit_guard, make_centre, make_user


@pytest.fixture(autouse=True)
def _restore_guard(app, db_kind):
    """Put the append-only trigger back: on PostgreSQL the schema outlives the test."""
    yield
    if db_kind == "postgresql":
        from portfolio.db import get_database

        with get_database(app).engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.execute(text(
                "ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))


@pytest.fixture
def chain(session):
    user = make_user(session, make_centre(session))
    for n in range(5):
        record_event(session, action=f"step.{n}", subject_type="thing", subject_id=n, actor=user,
                     detail={"n": n})
    session.commit()
    return user


def test_intact_chain_verifies(session, chain):
    count, problems = verify_chain(session)
    assert count == 6 and problems == []  # user.create + 5 steps
    assert chain_head(session) != GENESIS_HASH


def test_edited_event_is_named(session, chain, db_kind):
    bypass_audit_guard(session, db_kind)
    session.execute(text("UPDATE audit_events SET action = 'forged' WHERE seq = 3"))
    session.commit()
    _count, problems = verify_chain(session)
    assert [(pr.seq, "edited" in pr.message) for pr in problems] == [(3, True)]


def test_deleted_event_is_named(session, chain, db_kind):
    bypass_audit_guard(session, db_kind)
    session.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    session.commit()
    _count, problems = verify_chain(session)
    assert problems and problems[0].seq == 5
    assert "#4..#4 are missing" in problems[0].message


def test_reordered_events_are_named(session, chain, db_kind):
    bypass_audit_guard(session, db_kind)
    session.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
    session.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
    session.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
    session.commit()
    _count, problems = verify_chain(session)
    flagged = {pr.seq for pr in problems}
    assert {2, 3} <= flagged


def test_cli_reports_intact_and_broken(app, session, chain, db_kind):
    runner = app.test_cli_runner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact: 6 event(s)" in ok.output
    bypass_audit_guard(session, db_kind)
    session.execute(text("UPDATE audit_events SET detail = '{\"n\": 99}' WHERE seq = 2"))
    session.commit()
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "event #2: content was edited" in broken.output
