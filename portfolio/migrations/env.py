"""Alembic environment: uses the engine handed over by portfolio.schema."""

from __future__ import annotations

from alembic import context

import portfolio.models  # noqa: F401 - registers every table on the metadata
from portfolio.db import Base

config = context.config


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    """Leave out the full-text index, which depends on the database and is not in the models:
    PostgreSQL's generated `document` column and its GIN index, SQLite's FTS5 tables."""
    if name is None:
        return True
    if type_ == "table" and name.startswith("search_fts"):
        return False
    if type_ == "column" and name == "document" \
            and getattr(getattr(obj, "table", None), "name", "") == "search_entries":
        return False
    return not (type_ == "index" and name == "ix_search_entries_document")

engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
