"""Alembic, driven from the app's own configuration: upgrade, check, current revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from portfolio.db import get_database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(RuntimeError):
    """The database is not at the newest migration."""


def alembic_config(app: Flask) -> Config:
    """Return an Alembic Config bound to the app's engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = get_database(app).engine
    return config


def head_revision(app: Flask) -> str | None:
    """Return the newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config(app)).get_current_head()


def current_revision(app: Flask) -> str | None:
    """Return the revision the database is at (None when never migrated)."""
    with get_database(app).engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(app: Flask, revision: str = "head") -> None:
    """Apply migrations up to the revision."""
    command.upgrade(alembic_config(app), revision)


def downgrade(app: Flask, revision: str) -> None:
    """Revert migrations down to the revision."""
    command.downgrade(alembic_config(app), revision)


def check(app: Flask) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(app))


def ensure_up_to_date(app: Flask) -> None:
    """Refuse to serve a database that is not fully migrated, saying what to run.

    :raises SchemaOutOfDate: with the command that fixes it.
    """
    current, head = current_revision(app), head_revision(app)
    if current != head:
        state = "has never been migrated" if current is None else f"is at revision {current}"
        raise SchemaOutOfDate(
            f"The database {state}; this version of the app needs revision {head}. "
            "Run `portfolio db upgrade` (or `make run`, which does it for you) and start again."
        )
