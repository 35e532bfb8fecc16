"""Alembic environment: uses the engine handed over by portfolio.schema."""

from __future__ import annotations

from alembic import context

import portfolio.models  # noqa: F401 - registers every table on the metadata
from portfolio.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
