"""The two yardsticks `make bench-pages` measures every page against, served by gunicorn with
the same workers as the app: a bare Flask page, and a bare Flask page that runs one indexed SQL
query (a user by primary key) on the same database through a SQLAlchemy connection pool.

    BARE_DATABASE_URL=postgresql+psycopg://... gunicorn 'bench.bare_app:app'
"""

from __future__ import annotations

import os
import random

from flask import Flask
from markupsafe import escape
from sqlalchemy import create_engine, text

app = Flask(__name__)
_engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_pre_ping=False)
_highest = int(os.environ.get("BARE_HIGHEST_USER_ID", "1"))


@app.get("/hello")
def hello() -> str:
    return "<!doctype html><title>Hello</title><p>Hello</p>"


@app.get("/one-query")
def one_query() -> str:
    with _engine.connect() as conn:
        name = conn.execute(text("SELECT full_name FROM users WHERE id = :id"),
                            {"id": random.randint(1, _highest)}).scalar()  # noqa: S311
    return f"<!doctype html><title>One query</title><p>{escape(name or '')}</p>"
