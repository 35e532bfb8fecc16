"""Alembic migrations: upgrade from empty, no drift, downgrade, and refusing an un-migrated DB."""

from __future__ import annotations

import uuid

import pytest
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, inspect, text

from portfolio import create_app, schema
from portfolio.cli import cli
from portfolio.db import get_database


@pytest.fixture
def empty_url(db_kind, _database_template, tmp_path):
    """A database with no tables at all."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = "empty_" + uuid.uuid4().hex[:10]
    admin_url = _database_template.rsplit("/", 1)[0] + "/postgres"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield _database_template.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def empty_app(empty_url):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_url, "SECRET_KEY": "t",
                      "SESSION_COOKIE_SECURE": False})
    yield app
    get_database(app).engine.dispose()


def test_upgrade_from_empty_reaches_head_with_no_drift(empty_app):
    assert schema.current_revision(empty_app) is None
    schema.upgrade(empty_app)
    assert schema.current_revision(empty_app) == schema.head_revision(empty_app)
    schema.check(empty_app)  # raises if the models and migrations disagree
    tables = set(inspect(get_database(empty_app).engine).get_table_names())
    assert {"users", "units", "criteria", "enrolments", "audit_events"} <= tables


def test_check_detects_drift(empty_app):
    # An empty database differs from the models: check must say so rather than pass quietly.
    with pytest.raises(CommandError):
        schema.check(empty_app)


def test_downgrade_to_base_and_up_again(empty_app):
    schema.upgrade(empty_app)
    schema.downgrade(empty_app, "base")
    remaining = set(inspect(get_database(empty_app).engine).get_table_names())
    assert remaining <= {"alembic_version"}
    schema.upgrade(empty_app)
    assert schema.current_revision(empty_app) == schema.head_revision(empty_app)


def test_unmigrated_database_is_refused_with_the_command_to_run(empty_app):
    with pytest.raises(schema.SchemaOutOfDate, match="portfolio db upgrade"):
        schema.ensure_up_to_date(empty_app)
    response = empty_app.test_client().get("/login")
    assert response.status_code == 503
    assert "portfolio db upgrade" in response.get_data(True)
    api = empty_app.test_client().get("/api/v1/openapi.json")
    assert api.status_code == 503 and api.mimetype == "application/problem+json"
    result = empty_app.test_cli_runner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "portfolio db upgrade" in result.output


def test_audit_events_are_append_only_in_the_database(app, session):
    from portfolio.audit import record_event

    record_event(session, action="test", subject_type="test", subject_id=1)
    session.commit()
    with pytest.raises(Exception, match="append-only"):
        session.execute(text("UPDATE audit_events SET action = 'forged'"))
        session.flush()
    session.rollback()
    with pytest.raises(Exception, match="append-only"):
        session.execute(text("DELETE FROM audit_events"))
        session.flush()
    session.rollback()
