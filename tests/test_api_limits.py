"""Rate limits on the API, per token, shared by every machine through Redis (issue 14)."""

from __future__ import annotations

from portfolio.auth.services import create_api_token
from tests.factories import make_world


def _me(client, token: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_each_token_has_its_own_limit(make_app, session):
    app = make_app(API_RATE_LIMIT="3 per minute")
    from portfolio.db import get_database

    s = get_database(app).sessionmaker()
    world = make_world(s)
    first = create_api_token(s, world.learner, "script")[1]
    second = create_api_token(s, world.assessor, "script")[1]
    s.commit()
    client = app.test_client()
    assert [_me(client, first).status_code for _ in range(3)] == [200, 200, 200]
    over = _me(client, first)
    assert over.status_code == 429
    assert over.mimetype == "application/problem+json"
    assert int(over.headers["Retry-After"]) > 0
    assert over.headers["X-RateLimit-Limit"] == "3"
    assert _me(client, second).status_code == 200  # another token is not affected
    # A wrong token is limited as well (before it is even checked).
    assert [_me(client, "pat_wrong").status_code for _ in range(4)] == [401, 401, 401, 429]
    # Pages are not limited this way (sign-in has its own throttles).
    assert all(client.get("/login").status_code == 200 for _ in range(5))
    s.close()


def test_the_count_is_shared_between_machines_through_redis(make_app, redis_url):
    one = make_app(API_RATE_LIMIT="3 per minute", REDIS_URL=redis_url)
    from portfolio.db import get_database

    s = get_database(one).sessionmaker()
    world = make_world(s)
    token = create_api_token(s, world.learner, "script")[1]
    s.commit()
    s.close()
    two = make_app(API_RATE_LIMIT="3 per minute", REDIS_URL=redis_url)
    a, b = one.test_client(), two.test_client()
    assert _me(a, token).status_code == 200
    assert _me(b, token).status_code == 200
    assert _me(a, token).status_code == 200
    assert _me(b, token).status_code == 429  # the fourth call, whichever machine takes it


def test_in_process_counts_are_per_machine(make_app, session):
    """Without Redis each process counts alone: why several machines need REDIS_URL."""
    one = make_app(API_RATE_LIMIT="2 per minute")
    from portfolio.db import get_database

    s = get_database(one).sessionmaker()
    world = make_world(s)
    token = create_api_token(s, world.learner, "script")[1]
    s.commit()
    s.close()
    two = make_app(API_RATE_LIMIT="2 per minute")
    a, b = one.test_client(), two.test_client()
    assert [_me(a, token).status_code for _ in range(3)] == [200, 200, 429]
    assert _me(b, token).status_code == 200
