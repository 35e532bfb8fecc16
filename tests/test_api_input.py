"""Input the API (and the pages) did not expect answered 500 (issue 15's fuzzing findings).
Each now gets a clear 4xx, with nothing changed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from portfolio.auth.services import create_api_token
from portfolio.models import Evidence, Signature
from tests.conftest import Browserless
from tests.factories import PASSWORD, accept, decide, make_evidence, make_world

HUGE = "9" * 25  # far above 2^31 - 1, the largest id PostgreSQL's INTEGER columns hold


@pytest.fixture
def world(app, session):
    world = make_world(session, app.config["STORAGE_DIR"])
    world.learner_token = create_api_token(session, world.learner, "t")[1]
    world.assessor_token = create_api_token(session, world.assessor, "t")[1]
    session.commit()
    return world


def _api(app, token):
    client = app.test_client()

    def call(method, url, **kwargs):
        return client.open(f"/api/v1{url}", method=method,
                           headers={"Authorization": f"Bearer {token}"}, **kwargs)
    return call


@pytest.mark.parametrize("url", [f"/evidence/{HUGE}", f"/enrolments/{HUGE}/coverage",
                                 f"/files/{HUGE}", "/evidence/2147483648"])
def test_an_id_too_large_for_the_database_is_not_found(app, world, url):
    response = _api(app, world.learner_token)("GET", url)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_a_huge_id_is_404_for_every_method_the_path_has(app, world):
    """Refusing it in the router made PATCH answer 405, naming GET as allowed."""
    api = _api(app, world.learner_token)
    assert api("PATCH", f"/evidence/{HUGE}", json={}).status_code == 404
    assert api("POST", f"/evidence/{HUGE}/submit").status_code == 404
    deleted = api("DELETE", f"/evidence/{HUGE}")
    assert deleted.status_code == 405 and "PATCH" in deleted.headers["Allow"]


def test_pages_too(app, world):
    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    assert web.client.get(f"/evidence/{HUGE}").status_code == 404
    # The list pages by keyset now: a cursor it did not write is a clear 400, never a 500.
    bad = web.client.get("/notifications?page=\u00b2")
    assert bad.status_code == 400 and "page link is not valid" in bad.get_data(True)
    web.login  # noqa: B018 - the same client stays signed in
    assert web.post(f"/evidence/{world.evidence.id}/mappings",
                    {"criteria": ["\u00b2"]}).status_code == 422


def test_digits_python_accepts_but_int_does_not(app, world, session):
    api = _api(app, world.assessor_token)
    response = api("GET", f"/enrolments/{world.enrolment.id}/decision-state"
                          "?evidence_ids=\u00b2,\u0663")
    assert response.status_code == 200


def test_patch_checks_permission_before_the_body(app, world, session):
    """A non-integer keep_file_ids answered 500 before the permission check."""
    body = {"expected_version": 1, "title": "x", "activity_on": "2025-01-01",
            "keep_file_ids": ["x"]}
    assessor = _api(app, world.assessor_token)
    assert assessor("PATCH", f"/evidence/{world.evidence.id}", json=body).status_code == 403
    learner = _api(app, world.learner_token)
    refused = learner("PATCH", f"/evidence/{world.evidence.id}", json=body)
    assert refused.status_code == 422 and "keep_file_ids" in refused.get_json()["detail"]
    for bad in ({"expected_version": "one"}, {"expected_version": True},
                {"expected_version": 1, "activity_on": 20250101}):
        response = learner("PATCH", f"/evidence/{world.evidence.id}",
                           json={"title": "x", "activity_on": "2025-01-01", **bad})
        assert response.status_code == 422, bad
    session.expire_all()
    assert session.get(Evidence, world.evidence.id).current_version == 1


@pytest.mark.parametrize("body", ["[1]", '"text"', "true", "3"])
def test_a_json_body_that_is_not_an_object_is_refused(app, world, session, body):
    learner = _api(app, world.learner_token)
    for url in (f"/evidence/{world.evidence_to_withdraw.id}/withdraw",
                f"/evidence/{world.evidence_to_submit.id}/declaration",
                f"/enrolments/{world.enrolment.id}/declaration"):
        response = learner("POST", url, data=body, content_type="application/json")
        assert response.status_code == 422, (url, body)
    session.expire_all()
    assert session.get(Evidence, world.evidence_to_withdraw.id).status != "withdrawn"


def test_review_needs_a_whole_expected_version(app, world, session):
    item = make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    session.commit()
    api = _api(app, world.assessor_token)
    for version in ("abc", 1.5, None, [1]):
        response = api("POST", f"/evidence/{item.id}/review",
                       json={"outcome": "accepted", "expected_version": version})
        assert response.status_code == 422, version
    session.expire_all()
    assert session.get(Evidence, item.id).status == "submitted"


def test_a_405_says_which_methods_are_allowed(app, world):
    response = _api(app, world.learner_token)("GET", f"/evidence/{world.evidence.id}/submit")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    page = app.test_client().put("/login")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]


def test_the_unit_declaration_is_signed_once(app, world, session):
    """A learner could sign the unit declaration again and again (23 identical signatures)."""
    item = make_evidence(session, world.enrolment, world.learner, maps=("1.1",), submit=True)
    accept(session, item, world.assessor)
    decide(session, world.enrolment, world.assessor, "1.1", [item])
    session.commit()
    api = _api(app, world.learner_token)
    body = json.dumps({"typed_name": world.learner.full_name, "password": PASSWORD})
    first = api("POST", f"/enrolments/{world.enrolment.id}/declaration", data=body,
                content_type="application/json")
    assert first.status_code == 201
    again = api("POST", f"/enrolments/{world.enrolment.id}/declaration", data=body,
                content_type="application/json")
    assert again.status_code == 409 and "already declared" in again.get_json()["detail"]
    assert session.scalar(select(func.count()).select_from(Signature).where(
        Signature.purpose == "unit_declaration")) == 1


def test_the_document_says_what_the_api_does(app, world):
    """Four places where the OpenAPI document was wrong."""
    from portfolio.models.assessment import SIGNATURE_PURPOSES

    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    files = doc["paths"]["/files/{file_id}"]["get"]["responses"]["200"]["content"]
    assert list(files) == ["*/*"]
    purposes = doc["components"]["schemas"]["Signature"]["properties"]["purpose"]["enum"]
    assert set(purposes) == set(SIGNATURE_PURPOSES)
    params = doc["paths"]["/enrolments/{enrolment_id}/decision-state"]["get"]["parameters"]
    assert next(p for p in params if p["name"] == "evidence_ids")["required"] is False
    for name in ("EvidenceCreate", "EvidenceUpdate"):
        assert doc["components"]["schemas"][name]["properties"]["details"]["type"] == "object"


def test_collections_page_by_keyset(app, world, session):
    """Keyset paging: `next` leads through every item once, in id order, whatever is added."""
    for n in range(5):
        make_evidence(session, world.enrolment, world.learner, title=f"Item {n}")
    session.commit()
    api = _api(app, world.learner_token)
    url = f"/enrolments/{world.enrolment.id}/evidence?limit=2"
    seen, pages = [], 0
    while url:
        body = api("GET", url.removeprefix("/api/v1")).get_json()
        seen += [item["id"] for item in body["items"]]
        url, pages = body["next"], pages + 1
        if pages == 1:  # something added meanwhile comes at the end, never shifts a page
            make_evidence(session, world.enrolment, world.learner, title="Added meanwhile")
            session.commit()
    everything = api("GET", f"/enrolments/{world.enrolment.id}/evidence").get_json()
    assert seen == sorted(seen) == sorted(i["id"] for i in everything["items"])
    assert everything["next"] is None and pages >= 4
    for bad in ("limit=0", "limit=501", "limit=x", "after=-1", "after=\u00b2"):
        response = api("GET", f"/enrolments/{world.enrolment.id}/evidence?{bad}")
        assert response.status_code == 422, bad
    enrolments = api("GET", "/enrolments?limit=1").get_json()
    assert len(enrolments["items"]) == 1


def _walk(api, url: str) -> tuple[list[int], int, list[str]]:
    """Follow `next` to the end: every id seen, the pages read, and each page's Link header."""
    seen: list[int] = []
    links: list[str] = []
    pages = 0
    while url:
        response = api("GET", url.removeprefix("/api/v1"))
        assert response.status_code == 200, url
        body = response.get_json()
        seen += [item["id"] for item in body["items"]]
        links.append(response.headers.get("Link", ""))
        assert (body["next"] is None) == (not response.headers.get("Link"))
        if body["next"]:
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        url, pages = body["next"], pages + 1
    return seen, pages, links


def test_every_collection_pages_with_a_link_header(app, world, session):
    """Enrolments (in SQL), evidence (in SQL), decisions, signatures and units all page by
    keyset with `next` and an RFC 8288 Link header (issue 14)."""
    from tests.factories import accept, decide, make_enrolment, make_user

    for n in range(3):
        extra = make_user(session, world.learner.centre, "learner", email=f"l{n}@example.org")
        make_enrolment(session, extra, world.assessor, world.iqa, world.unit)
    items = [make_evidence(session, world.enrolment, world.learner, maps=(number,),
                           submit=True) for number in ("1.1", "1.2", "1.3")]
    for item in items:
        accept(session, item, world.assessor)
    for number, item in zip(("1.1", "1.2", "1.3"), items, strict=True):
        decide(session, world.enrolment, world.assessor, number, [item])
    session.commit()
    api = _api(app, world.assessor_token)
    e = world.enrolment.id
    for url, at_least in (("/enrolments?limit=1", 4), (f"/enrolments/{e}/evidence?limit=2", 3),
                          (f"/enrolments/{e}/decisions?limit=1", 3),
                          (f"/enrolments/{e}/signatures?limit=2", 3), ("/units?limit=1", 1)):
        seen, pages, _links = _walk(api, url)
        everything = api("GET", url.split("?")[0]).get_json()
        assert seen == sorted(seen) == [i["id"] for i in everything["items"]], url
        assert len(seen) >= at_least and pages >= len(seen) // int(url.rsplit("=", 1)[1]), url
    # The signature summary counts the whole enrolment, not the page.
    first = api("GET", f"/enrolments/{e}/signatures?limit=1").get_json()
    assert sum(first["summary"].values()) == len(_walk(api, f"/enrolments/{e}/signatures")[0])
    for bad in ("limit=0", "after=x"):
        for path in (f"/enrolments/{e}/decisions", f"/enrolments/{e}/signatures", "/units"):
            assert api("GET", f"{path}?{bad}").status_code == 422, (path, bad)
