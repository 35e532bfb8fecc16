"""The JSON API: token auth, problem+json errors, and an OpenAPI document that matches reality."""

from __future__ import annotations

import jsonschema
import pytest
from openapi_spec_validator import validate

from portfolio.api.openapi import build_openapi
from portfolio.auth.services import create_api_token
from tests.factories import PASSWORD, make_world


@pytest.fixture
def world(session):
    return make_world(session)


def _bearer(session, user) -> dict[str, str]:
    _token, raw = create_api_token(session, user, "test")
    session.commit()
    return {"Authorization": f"Bearer {raw}"}


def _schema_for(document: dict, path: str, status: str = "200") -> dict:
    operation = document["paths"][path]["get"]
    content = operation["responses"][status]["content"]
    media = content.get("application/json") or content["application/problem+json"]
    # Resolve $refs against the whole document.
    return {**media["schema"], "components": document["components"]}


def test_openapi_document_is_valid_openapi_31(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_openapi_lists_exactly_the_registered_api_routes(app):
    documented = {(path, method.upper()) for path, ops in build_openapi()["paths"].items()
                  for method in ops}
    registered = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule.removeprefix("/api/v1")
            for name in rule.arguments:
                path = path.replace(f"<int:{name}>", "{" + name + "}")
            registered |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == registered


@pytest.mark.parametrize("role", ["learner", "assessor", "iqa", "admin", "eqa"])
def test_responses_match_their_documented_schemas(client, session, world, role):
    document = build_openapi()
    headers = _bearer(session, getattr(world, role))
    calls = [("/me", "/me"), ("/enrolments", "/enrolments"), ("/units", "/units"),
             (f"/units/{world.unit.id}", "/units/{unit_id}")]
    if role in {"learner", "assessor", "iqa", "admin"}:
        calls.append((f"/enrolments/{world.enrolment.id}", "/enrolments/{enrolment_id}"))
    for url, template in calls:
        response = client.get("/api/v1" + url, headers=headers)
        assert response.status_code == 200, url
        jsonschema.validate(response.get_json(), _schema_for(document, template))


def test_errors_are_problem_json_matching_the_schema(client, session, world):
    document = build_openapi()
    missing = client.get("/api/v1/me")
    assert missing.status_code == 401 and missing.mimetype == "application/problem+json"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    jsonschema.validate(missing.get_json(), _schema_for(document, "/me", "401"))
    hidden = client.get(f"/api/v1/enrolments/{world.foreign_enrolment.id}",
                        headers=_bearer(session, world.learner))
    assert hidden.status_code == 404 and hidden.mimetype == "application/problem+json"
    jsonschema.validate(hidden.get_json(),
                        _schema_for(document, "/enrolments/{enrolment_id}", "404"))
    nowhere = client.get("/api/v1/no-such-thing", headers=_bearer(session, world.learner))
    assert nowhere.status_code == 404 and nowhere.mimetype == "application/problem+json"


def test_malformed_or_unknown_tokens_are_refused(client):
    for header in ("Bearer", "Bearer ", "Bearer pat_nonsense", "Basic dXNlcjpwYXNz",
                   "bearer " + "x" * 5000):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_a_signed_in_browser_session_is_not_enough_for_the_api(session, world, web):
    web.login(world.learner.email, PASSWORD)
    assert web.client.get("/").status_code == 200
    assert web.client.get("/api/v1/me").status_code == 401


def test_enrolment_list_shows_only_what_each_role_may_see(client, session, world):
    expected = {
        "learner": {world.enrolment.id},
        "other_learner": {world.other_enrolment.id},
        "assessor": {world.enrolment.id},
        "trainee": {world.other_enrolment.id},
        "iqa": {world.enrolment.id},
        "eqa": set(),
        "admin": {world.enrolment.id, world.other_enrolment.id},
        "other_admin": {world.foreign_enrolment.id},
    }
    for role, ids in expected.items():
        body = client.get("/api/v1/enrolments", headers=_bearer(session, getattr(world, role)))
        assert {item["id"] for item in body.get_json()["items"]} == ids, role


def test_unit_endpoint_carries_the_17_criteria_and_rules(client, session, world):
    body = client.get(f"/api/v1/units/{world.unit.id}",
                      headers=_bearer(session, world.learner)).get_json()
    numbers = [c["number"] for lo in body["learning_outcomes"] for c in lo["criteria"]]
    assert numbers == [f"1.{n}" for n in range(1, 9)] + [f"2.{n}" for n in range(1, 10)]
    assert body["assessment"] == {"workplace_only": True, "simulation_allowed": False,
                                  "rpl_allowed": True, "currency_months": 24}
    assert [lo["kind"] for lo in body["learning_outcomes"]] == ["knowledge", "performance"]
