"""The PostgreSQL connection pool is sized from the configuration, and a request that cannot
get a connection in time is answered 503 with Retry-After, not 500 (issue 14)."""

from __future__ import annotations

import pytest

from portfolio.db import get_database
from tests.factories import PASSWORD, make_world


def test_pool_settings_reach_the_engine(make_app, db_kind):
    app = make_app(DATABASE_POOL_SIZE=3, DATABASE_MAX_OVERFLOW=2, DATABASE_POOL_TIMEOUT=4,
                   DATABASE_POOL_RECYCLE=600)
    pool = get_database(app).engine.pool
    if db_kind == "sqlite":
        assert getattr(pool, "_timeout", None) != 4  # SQLite keeps its own defaults
        return
    assert pool.size() == 3
    assert pool._max_overflow == 2  # noqa: SLF001 - no public reader
    assert pool._timeout == 4  # noqa: SLF001
    assert pool._recycle == 600  # noqa: SLF001


def test_a_request_that_finds_no_free_connection_gets_503(make_app, db_kind, session):
    if db_kind == "sqlite":
        pytest.skip("SQLite has no connection pool to run out of")
    world = make_world(session)
    session.commit()
    app = make_app(DATABASE_POOL_SIZE=1, DATABASE_MAX_OVERFLOW=0, DATABASE_POOL_TIMEOUT=1)
    client = app.test_client()
    from tests.conftest import csrf_from

    token = csrf_from(client.get("/login").get_data(True))
    held = get_database(app).engine.connect()  # the only connection, taken
    try:
        response = client.post("/login", data={"email": world.learner.email,
                                               "password": PASSWORD, "csrf_token": token})
    finally:
        held.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "try again in a moment" in response.get_data(True)
    # With the connection back, the same request works.
    assert client.post("/login", data={"email": world.learner.email, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
