"""Evidence through the pages and the API: uploads, limits, versions, files served safely."""

from __future__ import annotations

import io
import os
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import func, select

from portfolio.api.openapi import build_openapi
from portfolio.auth.services import create_api_token
from portfolio.models import AuditEvent, Evidence, EvidenceFile, EvidenceVersion, StoredFile
from tests.factories import PASSWORD, TINY_PDF, criterion, make_evidence, make_world

TODAY = date.today().isoformat()


@pytest.fixture
def world(app, session):
    return make_world(session)


@pytest.fixture
def learner_web(web, world):
    web.login(world.learner.email, PASSWORD)
    return web


def _objects(app) -> list[Path]:
    root = Path(app.config["STORAGE_DIR"])
    return [p for p in root.rglob("*") if p.is_file()]


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _new_url(world, kind="work_product"):
    return f"/enrolments/{world.enrolment.id}/evidence/new/{kind}"


def _form(**extra):
    data = {"title": "Letter to a customer", "activity_on": TODAY,
            "activity_place": "Leeds office", "body_md": "I wrote this reply.",
            "personal_data_confirmed": "y"}
    data.update(extra)
    return data


def test_upload_stores_content_addressed_outside_static(app, session, world, learner_web):
    response = learner_web.post(_new_url(world), _form(files=[(io.BytesIO(TINY_PDF),
                                                               "../../etc/Letter<1>.pdf")]),
                                content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(True)
    item = session.scalar(select(EvidenceFile))
    assert item.filename == "Letter1.pdf" or "/" not in item.filename
    assert item.media_type == "application/pdf"
    stored = _objects(app)
    assert len(stored) == 1 and stored[0].name == item.sha256
    assert "static" not in str(stored[0])
    assert stored[0].read_bytes() == TINY_PDF
    events = [e.action for e in session.scalars(select(AuditEvent))]
    assert "evidence.create" in events


def test_same_content_is_stored_once(app, session, world, learner_web):
    for title in ("First", "Second"):
        learner_web.post(_new_url(world), _form(title=title, files=[(io.BytesIO(TINY_PDF),
                                                                     "a.pdf")]),
                         content_type="multipart/form-data")
    assert _count(session, EvidenceFile) == 2
    assert _count(session, StoredFile) == 1 and len(_objects(app)) == 1


def test_oversized_file_is_refused_with_413_and_leaves_nothing(make_app, session):
    app = make_app(MAX_FILE_MB=1)
    s = app.extensions["portfolio.db"].sessionmaker()
    world = make_world(s)
    from tests.conftest import Browserless

    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    big = TINY_PDF + b"0" * (1024 * 1024 + 10)
    response = web.post(_new_url(world), _form(files=[(io.BytesIO(big), "big.pdf")]),
                        content_type="multipart/form-data")
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.get_data(True)
    assert _count(s, Evidence) == 0 and _objects(app) == []
    token = create_api_token(s, world.learner, "t")[1]
    s.commit()
    api = app.test_client().post(
        f"/api/v1/enrolments/{world.enrolment.id}/evidence",
        data={"kind": "work_product", "title": "Big", "activity_on": TODAY,
              "personal_data_confirmed": "true", "files": [(io.BytesIO(big), "big.pdf")]},
        headers={"Authorization": f"Bearer {token}"}, content_type="multipart/form-data")
    assert api.status_code == 413 and api.mimetype == "application/problem+json"
    assert _count(s, Evidence) == 0 and _objects(app) == []
    s.close()


def test_whole_request_over_the_limit_gets_the_413_page(make_app, session):
    app = make_app(MAX_FILE_MB=1, MAX_FILES_PER_UPLOAD=1)
    s = app.extensions["portfolio.db"].sessionmaker()
    world = make_world(s)
    from tests.conftest import Browserless

    web = Browserless(app.test_client())
    web.login(world.learner.email, PASSWORD)
    huge = b"x" * (3 * 1024 * 1024)
    response = web.post(_new_url(world), _form(files=[(io.BytesIO(huge), "huge.pdf")]),
                        content_type="multipart/form-data")
    assert response.status_code == 413
    assert "smaller" in response.get_data(True)
    s.close()


@pytest.mark.parametrize(("content", "name"), [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "pic.svg"),
    (b"<!doctype html><html><script>alert(1)</script></html>", "photo.jpg"),
    (b"MZ\x90\x00" + b"\x00" * 200, "report.pdf"),
])
def test_dangerous_types_are_refused_and_nothing_is_kept(app, session, world, learner_web,
                                                         content, name):
    response = learner_web.post(_new_url(world), _form(files=[(io.BytesIO(content), name)]),
                                content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Upload documents" in response.get_data(True)
    assert _count(session, Evidence) == 0 and _objects(app) == []
    tmp = Path(app.config["STORAGE_DIR"]) / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []


def test_failed_commit_removes_newly_placed_files(app, session, world, monkeypatch):
    from PIL import Image

    from portfolio.evidence.storage import FileStore

    photo = io.BytesIO()
    Image.new("RGB", (1600, 1200), (20, 120, 90)).save(photo, "PNG")
    store = FileStore(Path(app.config["STORAGE_DIR"]))
    with store.batch() as batch:
        batch.add(io.BytesIO(TINY_PDF), "a.pdf", 10**7)
        batch.add(io.BytesIO(photo.getvalue()), "screen.png", 10**7)  # gets a print copy

        class Boom(Exception):
            pass

        def failing_commit():
            raise Boom()

        monkeypatch.setattr(session, "commit", failing_commit)
        with pytest.raises(Boom):
            batch.commit(session)
    assert _objects(app) == []


def test_files_are_served_only_through_a_checked_route(app, session, world, learner_web):
    learner_web.post(_new_url(world), _form(files=[(io.BytesIO(TINY_PDF), "a.pdf")]),
                     content_type="multipart/form-data")
    item = session.scalar(select(EvidenceFile))
    response = learner_web.client.get(f"/files/{item.id}")
    assert response.status_code == 200 and response.data == TINY_PDF
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    anonymous = app.test_client().get(f"/files/{item.id}")
    assert anonymous.status_code == 302  # sign in first


def test_revision_keeps_the_earlier_version_and_refuses_stale_forms(app, session, world,
                                                                    learner_web):
    evidence = make_evidence(session, world.enrolment, world.learner, title="Version one")
    session.commit()
    url = f"/evidence/{evidence.id}/edit"
    ok = learner_web.post(url, _form(title="Version two", body_md="Better account.",
                                     expected_version="1", change_note="more detail"))
    assert ok.status_code == 302
    stale = learner_web.post(url, _form(title="Version three", expected_version="1"))
    assert stale.status_code == 409
    assert "changed since you opened it" in stale.get_data(True)
    session.expire_all()
    versions = session.scalars(select(EvidenceVersion).where(
        EvidenceVersion.evidence_id == evidence.id).order_by(EvidenceVersion.version)).all()
    assert [v.title for v in versions] == ["Version one", "Version two"]
    old = learner_web.client.get(f"/evidence/{evidence.id}/versions/1").get_data(True)
    assert "Version one" in old and "an earlier version" in old


def test_submitted_evidence_cannot_be_changed_or_withdrawn(app, session, world, learner_web):
    evidence = make_evidence(session, world.enrolment, world.learner, maps=("1.1",),
                             submit=True)
    session.commit()
    edit = learner_web.post(f"/evidence/{evidence.id}/edit", _form(expected_version="1"))
    assert edit.status_code == 409
    withdraw = learner_web.post(f"/evidence/{evidence.id}/withdraw", {"reason": "oops"})
    assert withdraw.status_code == 409


def test_unmapped_evidence_cannot_be_submitted(app, session, world, learner_web):
    evidence = make_evidence(session, world.enrolment, world.learner)
    session.commit()
    response = learner_web.post(f"/evidence/{evidence.id}/submit")
    assert response.status_code == 409
    assert "Map this evidence" in response.get_data(True)


def test_mapping_from_both_sides(app, session, world, learner_web):
    evidence = make_evidence(session, world.enrolment, world.learner)
    session.commit()
    c13, c14 = criterion(session, "1.3").id, criterion(session, "1.4").id
    learner_web.post(f"/evidence/{evidence.id}/mappings", {
        "criteria": [str(c13), str(c14)], f"rationale-{c13}": "I explain the techniques",
        f"location-{c13}": "paragraph 2"})
    c23 = criterion(session, "2.3").id
    learner_web.post(f"/enrolments/{world.enrolment.id}/criteria/{c23}",
                     {"evidence_id": str(evidence.id), "location": "paragraph 4"})
    session.expire_all()
    live = sorted((m.criterion.number, m.location) for m in
                  session.get(Evidence, evidence.id).mappings if m.removed_at is None)
    assert live == [("1.3", "paragraph 2"), ("1.4", ""), ("2.3", "paragraph 4")]
    page = learner_web.client.get(f"/enrolments/{world.enrolment.id}/coverage").get_data(True)
    assert "does not accept" in page  # 2.3 from a reflective account only


def test_foreign_criterion_cannot_be_mapped(app, session, world, learner_web):
    evidence = make_evidence(session, world.enrolment, world.learner)
    session.commit()
    response = learner_web.post(f"/evidence/{evidence.id}/mappings", {"criteria": ["99999"]})
    assert response.status_code == 422


def test_relative_cannot_be_a_witness(app, session, world, learner_web):
    response = learner_web.post(_new_url(world, "witness_testimony"), _form(
        witness_name="Sam", witness_role="Driver", relationship="my brother",
        witness_contact="sam@example.org", body_md="Saw me help a customer."))
    assert response.status_code == 422
    assert "relative cannot act as a witness" in response.get_data(True)


def test_personal_data_is_flagged(app, session, world, learner_web):
    evidence = make_evidence(session, world.enrolment, world.learner,
                             body="Called Mrs Smith on 07700 900123 at LS1 4AP.")
    session.commit()
    page = learner_web.client.get(f"/evidence/{evidence.id}").get_data(True)
    assert "Possible customer personal data" in page
    assert "phone number" in page.lower() and "postcode" in page.lower()


def test_markdown_preview_is_sanitised(app, session, world, learner_web):
    token = learner_web.token()
    response = learner_web.client.post("/markdown-preview", json={
        "text": "**hi** <script>x</script>"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert "<strong>hi</strong>" in response.get_json()["html"]
    assert "<script" not in response.get_json()["html"]
    no_token = learner_web.client.post("/markdown-preview", json={"text": "x"})
    assert no_token.status_code == 400


def _schema(path: str, method: str, status: str) -> dict:
    document = build_openapi()
    media = document["paths"][path][method]["responses"][status]["content"]
    schema = next(iter(media.values()))["schema"]
    return {**schema, "components": document["components"]}


def test_api_round_trip(app, session, world):
    token = create_api_token(session, world.learner, "t")[1]
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    base = f"/api/v1/enrolments/{world.enrolment.id}"
    created = api.post(f"{base}/evidence", headers=headers, content_type="multipart/form-data",
                       data={"kind": "work_product", "title": "Reply letter",
                             "activity_on": TODAY, "personal_data_confirmed": "true",
                             "files": [(io.BytesIO(TINY_PDF), "reply.pdf")]})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    jsonschema.validate(body, _schema("/enrolments/{enrolment_id}/evidence", "post", "201"))
    evidence_id = body["id"]
    c28 = criterion(session, "2.8").id
    mapped = api.post(f"/api/v1/evidence/{evidence_id}/mappings", headers=headers,
                      json={"criterion_id": c28, "rationale": "records the outcome"})
    assert mapped.status_code == 201
    assert [m["number"] for m in mapped.get_json()["mappings"]] == ["2.8"]
    updated = api.patch(f"/api/v1/evidence/{evidence_id}", headers=headers, json={
        "expected_version": 1, "title": "Reply letter (redacted)", "activity_on": TODAY,
        "personal_data_confirmed": True})
    assert updated.status_code == 200 and updated.get_json()["current_version"] == 2
    assert len(updated.get_json()["version"]["files"]) == 1  # files kept by default
    stale = api.patch(f"/api/v1/evidence/{evidence_id}", headers=headers, json={
        "expected_version": 1, "title": "x", "activity_on": TODAY,
        "personal_data_confirmed": True})
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    submitted = api.post(f"/api/v1/evidence/{evidence_id}/submit", headers=headers)
    assert submitted.get_json()["status"] == "submitted"
    listing = api.get(f"{base}/evidence?status=submitted", headers=headers)
    jsonschema.validate(listing.get_json(),
                        _schema("/enrolments/{enrolment_id}/evidence", "get", "200"))
    assert [i["id"] for i in listing.get_json()["items"]] == [evidence_id]
    coverage = api.get(f"{base}/coverage", headers=headers)
    jsonschema.validate(coverage.get_json(),
                        _schema("/enrolments/{enrolment_id}/coverage", "get", "200"))
    entry = next(c for c in coverage.get_json()["criteria"] if c["number"] == "2.8")
    assert entry["status"] == "evidenced"
    assert [r["code"] for r in entry["reasons"]] == ["awaiting_assessor"]
    file_url = submitted.get_json()["version"]["files"][0]["url"]
    assert api.get(file_url, headers=headers).data == TINY_PDF
    removed = api.delete(f"/api/v1/evidence/{evidence_id}/mappings/{c28}", headers=headers)
    assert removed.status_code == 204
    again = api.delete(f"/api/v1/evidence/{evidence_id}/mappings/{c28}", headers=headers)
    assert again.status_code == 404


def test_api_validation_errors_are_problems(app, session, world):
    token = create_api_token(session, world.learner, "t")[1]
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    response = app.test_client().post(
        f"/api/v1/enrolments/{world.enrolment.id}/evidence", headers=headers,
        json={"kind": "reflective_account", "title": "No date", "body_md": "x",
              "personal_data_confirmed": True})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["title"] and "date" in problem["detail"].lower()
    jsonschema.validate(problem, _schema("/enrolments/{enrolment_id}/evidence", "post", "422"))


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_malformed_file_is_kept_with_a_clear_note(app, session, world, learner_web):
    broken_docx = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<<not xml"})
    response = learner_web.post(
        _new_url(world, "reflective_account"),
        _form(title="My account (Word)", body_md="", files=[(io.BytesIO(broken_docx),
                                                             "account.docx")]),
        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(True)
    item = session.scalar(select(EvidenceFile))
    assert item.preview["kind"] == "none" and item.preview["note"]
    page = learner_web.client.get(response.headers["Location"].split("#")[0]).get_data(True)
    assert item.preview["note"].split(".")[0] in page
    assert learner_web.client.get(f"/files/{item.id}").data == broken_docx  # raw file kept


def test_email_and_log_previews_through_the_page(app, session, world, learner_web):
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Adviser <adviser@work.example>"
    message["To"] = "Team <team@work.example>"
    message["Subject"] = "Follow-up on complaint C-1"
    message["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    message.set_content("I called back as promised.")
    learner_web.post(_new_url(world, "email"), _form(
        title="Follow-up email", files=[(io.BytesIO(bytes(message)), "follow-up.eml")]),
        content_type="multipart/form-data")
    csv_bytes = b"Date,Ref,Outcome\n01/11,C-1,Refund\n02/11,C-2,Apology\n"
    learner_web.post(_new_url(world, "log"), _form(
        title="Log", files=[(io.BytesIO(csv_bytes), "log.csv")]),
        content_type="multipart/form-data")
    ids = [e.id for e in session.scalars(select(Evidence).order_by(Evidence.id))]
    email_page = learner_web.client.get(f"/evidence/{ids[0]}").get_data(True)
    assert "Follow-up on complaint C-1" in email_page and "adviser@work.example" in email_page
    assert "All headers" in email_page
    log_page = learner_web.client.get(f"/evidence/{ids[1]}").get_data(True)
    assert "<th scope=\"col\">Outcome</th>" in log_page and "<td>Apology</td>" in log_page


def test_a_photos_print_copy_is_made_after_the_commit(app, session, world, monkeypatch):
    """Issue 16: the print copy was made while the write transaction was open, so uploads
    held the database's write lock for seconds."""
    from PIL import Image

    from portfolio.evidence import storage

    photo = io.BytesIO()
    Image.new("RGB", (1600, 1200), (20, 120, 90)).save(photo, "PNG")
    seen: list[bool] = []
    made = storage.ensure_print_copy

    def watched(root, sha):
        seen.append(session.in_transaction())
        return made(root, sha)

    monkeypatch.setattr(storage, "ensure_print_copy", watched)
    store = storage.FileStore(Path(app.config["STORAGE_DIR"]))
    with store.batch() as batch:
        batch.add(io.BytesIO(photo.getvalue()), "screen.png", 10**7)
        session.execute(select(1))  # the request's transaction is open, as in a real upload
        batch.commit(session)
    assert seen == [False]
    from portfolio.evidence.print_copy import print_copy_path

    assert print_copy_path(Path(app.config["STORAGE_DIR"]), batch.files[0].sha256).exists()
