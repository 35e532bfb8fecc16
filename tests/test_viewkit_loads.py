"""`viewkit.loads`: a route's object is loaded and authorised before the view body runs."""

from __future__ import annotations

import pytest

from portfolio.auth.services import get_or_create_centre
from portfolio.errors import NotFound, PermissionDenied
from portfolio.models import User
from portfolio.viewkit import loads
from tests.conftest import Browserless
from tests.factories import PASSWORD, make_user

ran: list[int] = []


def own_account(session, user_id, user) -> User:
    """A loader: 404 for a missing person, 403 for someone else."""
    person = session.get(User, user_id)
    if person is None:
        raise NotFound("No such person.")
    if person.id != user.id:
        raise PermissionDenied("Not yours.")
    return person


@loads(person=own_account, by="user_id")
def show(person: User, extra: str) -> str:
    ran.append(person.id)
    return f"{person.email} {extra}"


@pytest.fixture
def setup(make_app):
    app = make_app()
    app.add_url_rule("/test-loads/<int:user_id>/<extra>", "test_loads", show)
    from portfolio.db import get_database

    with get_database(app).sessionmaker() as s:
        centre = get_or_create_centre(s, "Loads Centre")
        me, other = make_user(s, centre), make_user(s, centre)
        s.commit()
        ids = me.id, other.id, me.email
    web = Browserless(app.test_client())
    web.login(ids[2], PASSWORD)
    ran.clear()
    return web, ids


def test_the_object_reaches_the_view_in_place_of_its_id(setup):
    web, (me, _other, email) = setup
    response = web.client.get(f"/test-loads/{me}/more")
    assert response.status_code == 200
    assert response.get_data(True) == f"{email} more"  # other URL arguments pass through
    assert ran == [me]


def test_missing_is_404_and_someone_elses_403_before_the_body_runs(setup):
    web, (me, other, _email) = setup
    assert web.client.get(f"/test-loads/{me + other + 1000}/x").status_code == 404
    assert web.client.get(f"/test-loads/{other}/x").status_code == 403
    assert ran == []


def test_one_loader_a_decorator():
    with pytest.raises(TypeError):
        loads(a=own_account, b=own_account)
