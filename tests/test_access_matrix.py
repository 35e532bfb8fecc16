"""Role x endpoint access matrix: every registered route, every role, own and other people's ids.

A new route fails `test_every_route_is_in_the_matrix` until it is added here with its expectations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from portfolio.auth.services import create_api_token
from tests.conftest import csrf_from
from tests.factories import PASSWORD, World, make_world

ROLES = ("anonymous", "learner", "other_learner", "assessor", "trainee", "iqa", "eqa", "admin",
         "other_admin")
STAFF = ROLES[1:]

# Outcomes
OK = "ok"  # 200 or 201
LOGIN = "login"  # redirected to the sign-in page
HOME = "home"  # redirected to the dashboard
REDIRECT = "redirect"  # any other redirect after a successful action
FORBIDDEN = "forbidden"  # 403
MISSING = "missing"  # 404: other people's ids look exactly like ids that do not exist
INVALID = "invalid"  # 422: allowed in, but the empty form was refused
UNAUTH = "unauth"  # 401 problem+json (API without a token)


@dataclass
class Case:
    endpoint: str
    method: str
    path: Callable[[World, dict], str]
    expect: dict[str, str]
    data: dict = field(default_factory=dict)
    api: bool = False
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.method} {self.endpoint}{' ' + self.label if self.label else ''}"


def everyone(outcome: str, anonymous: str = LOGIN, **overrides: str) -> dict[str, str]:
    table = {role: outcome for role in STAFF}
    table["anonymous"] = anonymous
    table.update(overrides)
    return table


def admins_only(outcome: str, other_admin: str | None = None) -> dict[str, str]:
    table = everyone(FORBIDDEN)
    table["admin"] = outcome
    table["other_admin"] = other_admin or outcome
    return table


def api(outcome: str, **overrides: str) -> dict[str, str]:
    return everyone(outcome, anonymous=UNAUTH, **overrides)


def seen_by(allowed: set[str], anonymous: str = LOGIN) -> dict[str, str]:
    table = {role: (OK if role in allowed else MISSING) for role in STAFF}
    table["anonymous"] = anonymous
    return table


CASES = [
    Case("dashboard.home", "GET", lambda w, t: "/", everyone(OK)),
    Case("auth.login", "GET", lambda w, t: "/login", everyone(HOME, anonymous=OK)),
    Case("auth.login", "POST", lambda w, t: "/login", everyone(HOME, anonymous=UNAUTH),
         data={"email": "nobody@example.org", "password": "wrong password"}),
    Case("auth.logout", "POST", lambda w, t: "/logout", everyone(LOGIN)),
    Case("auth.account", "GET", lambda w, t: "/account", everyone(OK)),
    Case("auth.change_password", "POST", lambda w, t: "/account/password", everyone(INVALID)),
    Case("auth.create_token", "POST", lambda w, t: "/account/tokens", everyone(OK),
         data={"tok-name": "matrix"}),
    Case("auth.revoke_token", "POST",
         lambda w, t: f"/account/tokens/{t['learner'].id}/revoke",
         everyone(MISSING, learner=REDIRECT)),
    Case("criteria.units", "GET", lambda w, t: "/units", everyone(OK)),
    Case("criteria.unit", "GET", lambda w, t: f"/units/{w.unit.id}", everyone(OK)),
    Case("criteria.unit", "GET", lambda w, t: "/units/999999", everyone(MISSING),
         label="unknown id"),
    Case("enrolments.detail", "GET", lambda w, t: f"/enrolments/{w.enrolment.id}",
         seen_by({"learner", "assessor", "iqa", "admin"})),
    Case("enrolments.detail", "GET", lambda w, t: f"/enrolments/{w.other_enrolment.id}",
         seen_by({"other_learner", "trainee", "admin"}), label="other learner"),
    Case("enrolments.detail", "GET", lambda w, t: f"/enrolments/{w.foreign_enrolment.id}",
         seen_by({"other_admin"}), label="other centre"),
    Case("admin.people", "GET", lambda w, t: "/admin/people", admins_only(OK)),
    Case("admin.new_person", "GET", lambda w, t: "/admin/people/new", admins_only(OK)),
    Case("admin.new_person", "POST", lambda w, t: "/admin/people/new", admins_only(INVALID)),
    Case("admin.edit_person", "GET", lambda w, t: f"/admin/people/{w.learner.id}",
         admins_only(OK, other_admin=MISSING)),
    Case("admin.edit_person", "POST", lambda w, t: f"/admin/people/{w.learner.id}",
         admins_only(INVALID, other_admin=MISSING)),
    Case("admin.enrolments_list", "GET", lambda w, t: "/admin/enrolments", admins_only(OK)),
    Case("admin.new_enrolment", "GET", lambda w, t: "/admin/enrolments/new", admins_only(OK)),
    Case("admin.new_enrolment", "POST", lambda w, t: "/admin/enrolments/new",
         admins_only(INVALID)),
    Case("admin.edit_enrolment", "GET", lambda w, t: f"/admin/enrolments/{w.enrolment.id}",
         admins_only(OK, other_admin=MISSING)),
    # Fields left out of a POST keep their stored values, so an empty POST saves nothing new.
    Case("admin.edit_enrolment", "POST", lambda w, t: f"/admin/enrolments/{w.enrolment.id}",
         admins_only(REDIRECT, other_admin=MISSING)),
    Case("admin.edit_enrolment", "GET",
         lambda w, t: f"/admin/enrolments/{w.foreign_enrolment.id}",
         admins_only(MISSING, other_admin=OK), label="other centre"),
    Case("api.openapi", "GET", lambda w, t: "/api/v1/openapi.json", everyone(OK, anonymous=OK),
         api=True),
    Case("api.me", "GET", lambda w, t: "/api/v1/me", api(OK), api=True),
    Case("api.enrolments", "GET", lambda w, t: "/api/v1/enrolments", api(OK), api=True),
    Case("api.enrolment", "GET", lambda w, t: f"/api/v1/enrolments/{w.enrolment.id}",
         seen_by({"learner", "assessor", "iqa", "admin"}, anonymous=UNAUTH), api=True),
    Case("api.enrolment", "GET", lambda w, t: f"/api/v1/enrolments/{w.foreign_enrolment.id}",
         seen_by({"other_admin"}, anonymous=UNAUTH), api=True, label="other centre"),
    Case("api.units", "GET", lambda w, t: "/api/v1/units", api(OK), api=True),
    Case("api.unit", "GET", lambda w, t: f"/api/v1/units/{w.unit.id}", api(OK), api=True),
    Case("api.unit", "GET", lambda w, t: "/api/v1/units/999999", api(MISSING), api=True,
         label="unknown id"),
]


def _people(world: World) -> dict[str, object]:
    return {"learner": world.learner, "other_learner": world.other_learner,
            "assessor": world.assessor, "trainee": world.trainee, "iqa": world.iqa,
            "eqa": world.eqa, "admin": world.admin, "other_admin": world.other_admin}


def _outcome(response, api_call: bool) -> str:
    status = response.status_code
    if status in (301, 302, 303):
        location = response.headers["Location"]
        if "/login" in location:
            return LOGIN
        return HOME if urlsplit(location).path == "/" else REDIRECT
    if api_call and status >= 400:
        assert response.mimetype == "application/problem+json", response.get_data(True)
    return {200: OK, 201: OK, 401: UNAUTH, 403: FORBIDDEN, 404: MISSING,
            422: INVALID}.get(status, f"status {status}")


def test_every_route_is_in_the_matrix(app):
    registered = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = {(case.endpoint, case.method) for case in CASES}
    assert registered - covered == set(), "routes missing from the access matrix"
    assert covered - registered == set(), "matrix lists routes that do not exist"


@pytest.fixture
def matrix(app, session):
    world = make_world(session)
    tokens = {}
    api_tokens = {}
    for role, person in _people(world).items():
        tokens[role], _ = create_api_token(session, person, "matrix")
        api_tokens[role] = create_api_token(session, person, "api")[1]
    session.commit()
    return world, tokens, api_tokens


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app, matrix, role):
    world, tokens, api_tokens = matrix
    people = _people(world)
    failures = []
    for case in CASES:
        client = app.test_client()
        if role != "anonymous" and not case.api:
            login_page = client.get("/login")
            client.post("/login", data={"email": people[role].email, "password": PASSWORD,
                                        "csrf_token": csrf_from(login_page.get_data(True))})
        headers = {}
        if case.api and role != "anonymous":
            headers["Authorization"] = f"Bearer {api_tokens[role]}"
        path = case.path(world, tokens)
        if case.method == "GET":
            response = client.get(path, headers=headers)
        else:
            page = client.get("/login" if role == "anonymous" else "/account")
            data = dict(case.data)
            data["csrf_token"] = csrf_from(page.get_data(True))
            data.setdefault("tok-csrf_token", data["csrf_token"])
            data.setdefault("pw-csrf_token", data["csrf_token"])
            response = client.post(path, data=data, headers=headers)
        got = _outcome(response, case.api)
        if got != case.expect[role]:
            failures.append(f"{case.id} {path}: expected {case.expect[role]}, got {got}")
    assert not failures, "\n".join(failures)
